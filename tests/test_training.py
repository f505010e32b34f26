"""The training loop for real, on tiny synthetic data: the loss drops, resume gives the same weights,
``torchrun`` DDP with two CPU processes completes, the CLI refuses bad input, proposals are cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from masa_core.cli.train import main as train_main
from masa_core.models.checkpoint import read_checkpoint
from masa_core.train.dataset import DataError, PairDataset
from masa_core.train.trainer import Trainer, load_train_config
from tests.paths import REPO
from tests.train_data import tiny_config, write_images


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_images(tmp_path_factory.mktemp("train") / "images", count=3)


def test_loss_drops_when_overfitting_one_batch(images: Path, tmp_path: Path) -> None:
    trainer = Trainer(load_train_config(tiny_config(images, tmp_path, epochs=30)))
    views = list(trainer.data.pair(0, 0))
    losses = [trainer.step(views, it)["loss"] for it in range(30)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3]), losses


def test_resume_continues_to_the_same_weights(images: Path, tmp_path: Path) -> None:
    straight = Trainer(load_train_config(tiny_config(images, tmp_path / "a")))
    straight.run()

    interrupted = Trainer(load_train_config(tiny_config(images, tmp_path / "b")))
    interrupted.run(stop_after=1)
    resumed = Trainer(load_train_config(tiny_config(images, tmp_path / "b")))
    resumed.resume()
    assert resumed.epoch == 1
    resumed.run()

    a, b = straight.model.adapter.state_dict(), resumed.model.adapter.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    assert [h["loss"] for h in straight.history] == pytest.approx([h["loss"] for h in resumed.history])
    # and the exported adapter is what the tracker loads
    exported = read_checkpoint(tmp_path / "b" / "adapter.pt")
    assert exported["variant"] == "masa_mobilesam"


def test_loader_workers_and_nested_ignore_train_like_the_main_process(images: Path, tmp_path: Path) -> None:
    track = {"samples": 16, "jitter_copies": 2, "nested_ignore": 0.9}
    runs = []
    for workers in (0, 2):
        trainer = Trainer(
            load_train_config(tiny_config(images, tmp_path / str(workers), epochs=1, workers=workers, track=track))
        )
        trainer.run()
        runs.append(trainer)
    a, b = (t.model.adapter.state_dict() for t in runs)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    assert np.isfinite(runs[0].history[0]["track"])


def test_time_budget_cuts_the_run_and_the_schedule(images: Path, tmp_path: Path) -> None:
    trainer = Trainer(load_train_config(tiny_config(images, tmp_path, epochs=3, time_budget_s=1e-3)))
    trainer.run()
    assert trainer.epochs == 1 and len(trainer.history) == 1
    assert trainer.total_iters == trainer.iters_per_epoch
    assert read_checkpoint(tmp_path / "adapter.pt")["meta"]["epochs"] == 1


def test_ddp_with_two_cpu_processes_completes(images: Path, tmp_path: Path) -> None:
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(tiny_config(images, tmp_path / "run", epochs=1)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run(
        [*cmd, "-m", "masa_core.cli.train", str(config)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    exported = read_checkpoint(tmp_path / "run" / "adapter.pt")
    assert exported["meta"]["world"] == 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"optim": {"lrr": 1}}, "lrr"),
        ({"data": {"images": "/nonexistent/folder"}}, "not a folder"),
        ({"data": {"augment": {"out_size": 50}}}, "out_size"),
        ({"model": {"variant": "masa_nothing"}}, "masa_nothing"),
    ],
)
def test_cli_refuses_bad_config_with_exit_2(
    edit: dict, message: str, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tiny_config(images, tmp_path / "run")
    for key, value in edit.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) and isinstance(cfg.get(key), dict) else value
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(cfg))
    assert train_main([str(config)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "adapter.pt").exists()


def test_cli_refuses_missing_config_resume_without_state_and_evaluation_data(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train_main([str(tmp_path / "missing.yaml")]) == 2
    config = tmp_path / "ok.yaml"
    config.write_text(yaml.safe_dump(tiny_config(images, tmp_path / "run")))
    assert train_main([str(config), "--resume"]) == 2  # no last.pt yet
    held = write_images(tmp_path / "mot15_frames", count=1)
    config.write_text(yaml.safe_dump(tiny_config(held, tmp_path / "run")))
    assert train_main([str(config)]) == 2
    assert "held-out" in capsys.readouterr().err


def test_holdout_split_is_disjoint(images: Path) -> None:
    cfg = load_train_config({"data": {"images": str(images), "holdout_every": 3}}).data
    train, held = PairDataset(cfg, split="train"), PairDataset(cfg, split="holdout")
    assert len(train.paths) == 2 and len(held.paths) == 1
    assert not set(train.paths) & set(held.paths)
    with pytest.raises(DataError):
        PairDataset(load_train_config({"data": {"images": str(images), "holdout_every": 1}}).data)


def test_proposals_are_generated_once_then_read_from_the_cache(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "images", count=1)
    image = next(folder.glob("*.png"))
    image.with_suffix(".json").unlink()  # no SA-1B file: MobileSAM's automatic masks are used
    cfg = {"images": str(folder), "holdout_every": 0, "proposals": {"points_per_side": 4, "min_mask_region_area": 0}}
    data = PairDataset(load_train_config({"data": cfg}).data)
    masks, _ = data.proposals.masks(image, data.item(0)[0])
    entry = data.proposals.entry(image)
    assert entry.is_file() and masks.dtype == bool
    cached = json.loads(entry.read_text())
    assert cached["cache_key"]["generator"]["points_per_side"] == 4
    again = PairDataset(load_train_config({"data": cfg}).data)
    again.proposals.generate = None  # type: ignore[method-assign]  # a cache hit must not generate
    masks2, _ = again.proposals.masks(image, again.item(0)[0])
    np.testing.assert_array_equal(masks, masks2)
