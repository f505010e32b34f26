"""Training loop: SGD with warm-up and step decay, AMP on CUDA, checkpoints with resume,
TensorBoard logs, progress bars and ``torchrun`` DDP (gloo on the CPU, NCCL on CUDA).

    masa-train config/train_cpu.yaml                      # one process
    torchrun --nproc_per_node 2 -m masa_core.cli.train CONFIG   # data-parallel

The backbone stays frozen (no gradients, eval mode); only the adapter trains. Every
``checkpoint_every`` epochs ``<out_dir>/last.pt`` holds everything a resume needs; at the end
``<out_dir>/adapter.pt`` is the adapter in masa_core's checkpoint form, which ``model.checkpoint``
loads.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from masa_core.config import ConfigError, dataclass_from_dict
from masa_core.device import resolve_device
from masa_core.models.build import UNTRAINED, ModelConfig, build_model
from masa_core.models.checkpoint import CheckpointError, read_checkpoint, save_adapter
from masa_core.models.masa_model import MasaModel
from masa_core.train.augment import View
from masa_core.train.dataset import DataConfig, PairDataset
from masa_core.train.losses import DetectionLossConfig
from masa_core.train.objective import AdapterObjective, TrackLossConfig

PAPER_LR, PAPER_BATCH = 0.04, 128


@dataclass(frozen=True)
class OptimConfig:
    """SGD as in the paper (lr 0.04 at batch 128, momentum 0.9, weight decay 1e-4); ``lr`` 0 →
    the paper's rate scaled linearly to the global batch; linear warm-up, ×0.1 at ``decay_at``
    (fractions of the run)."""

    lr: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 50
    warmup_ratio: float = 0.001
    decay_at: tuple[float, ...] = (0.75,)
    grad_clip: float = 35.0  # max gradient norm; 0 = off


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; ``model.input_size`` is set to ``data.augment.out_size``."""

    model: ModelConfig = field(
        default_factory=lambda: ModelConfig(variant="masa_mobilesam", fp16=False, checkpoint=UNTRAINED)
    )
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    track: TrackLossConfig = field(default_factory=TrackLossConfig)
    detection: DetectionLossConfig = field(default_factory=DetectionLossConfig)
    batch_size: int = 2  # view pairs per process and step
    epochs: int = 12
    seed: int = 0
    out_dir: str = "runs/train"
    amp: bool = True  # mixed precision, CUDA only
    checkpoint_every: int = 1
    log_every: int = 10
    threads: int = 0  # torch CPU threads per process; 0 = torch's default
    workers: int = 0  # data-loader processes making the augmented views; 0 = in the training process
    time_budget_s: float = 0.0  # > 0: after each epoch, cut ``epochs`` so the run ends within this many seconds

    def validate(self) -> TrainConfig:
        if self.batch_size < 1 or self.epochs < 1 or self.checkpoint_every < 1:
            raise ValueError("batch_size, epochs and checkpoint_every must be at least 1")
        if self.workers < 0 or self.time_budget_s < 0:
            raise ValueError("workers and time_budget_s must not be negative")
        if self.model.checkpoint not in ("", UNTRAINED) and not Path(self.model.checkpoint).is_file():
            raise ValueError(f"model.checkpoint = {self.model.checkpoint}: not a file")
        self.data.augment.validate()
        self.model.validate()
        return self


def load_train_config(data: dict[str, Any]) -> TrainConfig:
    """A validated :class:`TrainConfig` from a nested dict (a parsed YAML file)."""
    cfg = dataclass_from_dict(TrainConfig, data)
    try:
        return cfg.validate()
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(str(e)) from e


def init_distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size); starts the process group when launched by ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def learning_rate(cfg: TrainConfig, world: int) -> float:
    return cfg.optim.lr or PAPER_LR * cfg.batch_size * world / PAPER_BATCH


def lr_factor(cfg: OptimConfig, it: int, total: int) -> float:
    """Warm-up from ``warmup_ratio`` to 1 over ``warmup_iters``, then ×0.1 at each decay point."""
    factor = 0.1 ** sum(it >= math.floor(f * total) for f in cfg.decay_at)
    if it < cfg.warmup_iters:
        factor *= cfg.warmup_ratio + (1 - cfg.warmup_ratio) * it / cfg.warmup_iters
    return factor


class EpochPairs(torch.utils.data.Dataset):
    """The view pairs of one epoch for a data loader: item ``i`` is ``data.pair(indices[i], epoch)``."""

    def __init__(self, data: PairDataset, indices: np.ndarray, epoch: int) -> None:
        self.data, self.indices, self.epoch = data, indices, epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[View, View]:
        return self.data.pair(int(self.indices[i]), self.epoch)


def to_batch(model: MasaModel, views: list[View]) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Normalised (2B, 3, S, S) images and per-view boxes and IDs on the model's device."""
    dev = model.device
    images = torch.from_numpy(np.stack([v.image for v in views])).to(dev).permute(0, 3, 1, 2).float()
    images = (images - model.pixel_mean) / model.pixel_std
    boxes = [torch.from_numpy(v.boxes).to(dev) for v in views]
    ids = [torch.from_numpy(v.ids).to(dev) for v in views]
    return images, boxes, ids


class Trainer:
    """One training run (see the module docstring)."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg.validate()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        device = resolve_device(cfg.model.device)
        self.rank, self.world = init_distributed(device)
        if device.type == "cuda" and self.world > 1:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        model_cfg = dataclasses.replace(cfg.model, input_size=cfg.data.augment.out_size, fp16=False, device=str(device))
        with torch.random.fork_rng(devices=[]):
            self.model = build_model(model_cfg)  # adapter seeded by model.seed, same on every rank
        self.device = self.model.device
        self.model.adapter.train()
        self.objective = AdapterObjective(self.model.adapter, cfg.track, cfg.detection)
        self.ddp = DistributedDataParallel(self.objective) if self.world > 1 else None
        self.data = PairDataset(cfg.data, cfg.seed, str(self.device))
        params = [p for p in self.model.adapter.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(
            params, lr=learning_rate(cfg, self.world), momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay
        )
        self.iters_per_epoch = max(1, len(self.data) // (cfg.batch_size * self.world))
        self.epochs = cfg.epochs  # may be cut by ``time_budget_s``
        self.total_iters = self.iters_per_epoch * cfg.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda it: lr_factor(cfg.optim, it, self.total_iters)
        )
        self.amp = cfg.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.out = Path(cfg.out_dir)
        self.epoch = 0
        self.history: list[dict[str, float]] = []

    # -- checkpoints -------------------------------------------------------------------------

    def save(self) -> Path:
        path = self.out / "last.pt"
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            state = {
                "format": "masa_ros/train",
                "variant": self.model.variant,
                "epoch": self.epoch,
                "epochs": self.epochs,
                "adapter": self.model.adapter.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "history": self.history,
            }
            tmp = path.with_suffix(".pt.tmp")
            torch.save(state, tmp)
            tmp.replace(path)
        return path

    def resume(self, path: str | Path | None = None) -> None:
        """Continue from ``path`` (default ``<out_dir>/last.pt``) at the epoch after it."""
        state = read_checkpoint(path or self.out / "last.pt")
        if state.get("format") != "masa_ros/train" or state.get("variant") != self.model.variant:
            raise CheckpointError(f"{path}: not a training checkpoint of variant {self.model.variant}")
        self.model.adapter.load_state_dict(state["adapter"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.set_epochs(int(state.get("epochs", self.cfg.epochs)))
        self.history = list(state.get("history", []))

    def export(self, path: str | Path | None = None, meta: dict | None = None) -> Path:
        """The adapter in masa_core's checkpoint form (what ``model.checkpoint`` loads)."""
        path = Path(path or self.out / "adapter.pt")
        if self.rank == 0:
            info = {
                "epochs": self.epoch,
                "iterations": self.epoch * self.iters_per_epoch,
                "world": self.world,
                "embed_scale": 1.0 / self.cfg.track.temperature,  # the tracker's dot product = cos / τ
            }
            save_adapter(path, self.model.adapter, self.model.variant, {**info, **(meta or {})})
        return path

    # -- training ----------------------------------------------------------------------------

    def set_epochs(self, epochs: int) -> None:
        """Run ``epochs`` in all (the schedule's decay points move with it)."""
        self.epochs = max(self.epoch, 1, min(epochs, self.cfg.epochs))
        self.total_iters = self.iters_per_epoch * self.epochs

    def fit_budget(self, elapsed: float, epochs_run: int) -> None:
        """Cut the run so that it ends within ``time_budget_s`` at the mean epoch time so far."""
        if self.cfg.time_budget_s <= 0 or epochs_run == 0:
            return
        per_epoch = elapsed / epochs_run
        more = int((self.cfg.time_budget_s - elapsed) // per_epoch)
        # Every rank must agree: rank 0's decision is broadcast.
        if self.world > 1:
            box = torch.tensor([more], device=self.device)
            dist.broadcast(box, 0)
            more = int(box.item())
        if self.epoch + more < self.epochs:
            self.set_epochs(self.epoch + more)
            if self.rank == 0:
                print(f"time budget: {per_epoch:.1f} s per epoch, stopping after epoch {self.epochs}", flush=True)

    def loader(self, indices: np.ndarray) -> torch.utils.data.DataLoader:
        """This epoch's view pairs, ``batch_size`` per step, made by ``workers`` processes."""
        return torch.utils.data.DataLoader(
            EpochPairs(self.data, indices, self.epoch),
            batch_size=self.cfg.batch_size,
            drop_last=True,
            num_workers=self.cfg.workers,
            collate_fn=list,
            # fresh worker processes, not forks: forking a process that has loaded OpenVINO (or CUDA)
            # crashes it (measured: SIGSEGV once the OpenVINO backend had run in the same process)
            multiprocessing_context="spawn" if self.cfg.workers > 0 else None,
        )

    def step(self, views: list[View], it: int) -> dict[str, float]:
        torch.manual_seed(self.cfg.seed * 1_000_003 + it * self.world + self.rank)  # sampling, same on resume
        images, boxes, ids = to_batch(self.model, views)
        with torch.no_grad():
            taps = self.model.backbone(images)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            terms = (self.ddp or self.objective)(taps, boxes, ids)
            loss = sum(terms.values())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.adapter.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}

    def run(self, stop_after: int | None = None) -> Path:
        """Train from ``self.epoch`` to ``cfg.epochs`` (or only up to epoch ``stop_after``, as an
        interrupted run would); returns the exported adapter's path."""
        writer = None
        if self.rank == 0:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.out / "tb"))
        if self.cfg.workers:
            self.data.prepare()  # proposals made here (maybe on the GPU), never in a worker
        run_start, epochs_run = time.perf_counter(), 0
        try:
            while self.epoch < min(self.epochs, stop_after or self.epochs):
                order = np.random.default_rng([self.cfg.seed, self.epoch]).permutation(len(self.data))
                mine = order[self.rank :: self.world]
                sums: dict[str, float] = {}
                batches = itertools.islice(self.loader(mine), self.iters_per_epoch)
                bar = tqdm(
                    batches,
                    total=self.iters_per_epoch,
                    desc=f"epoch {self.epoch + 1}/{self.epochs}",
                    disable=self.rank != 0,
                    dynamic_ncols=True,
                )
                start = time.perf_counter()
                for i, pairs in enumerate(bar):
                    it = self.epoch * self.iters_per_epoch + i
                    views = [p[0] for p in pairs] + [p[1] for p in pairs]
                    terms = self.step(views, it)
                    for k, v in terms.items():
                        sums[k] = sums.get(k, 0.0) + v
                    bar.set_postfix(loss=f"{terms['loss']:.3f}", track=f"{terms['track']:.3f}")
                    if writer is not None and it % self.cfg.log_every == 0:
                        for k, v in terms.items():
                            writer.add_scalar(f"loss/{k}", v, it)
                        writer.add_scalar("lr", self.optimizer.param_groups[0]["lr"], it)
                self.epoch += 1
                means = {k: v / self.iters_per_epoch for k, v in sums.items()}
                means["seconds"] = time.perf_counter() - start
                self.history.append(means)
                if writer is not None:
                    for k, v in means.items():
                        writer.add_scalar(f"epoch/{k}", v, self.epoch)
                epochs_run += 1
                self.fit_budget(time.perf_counter() - run_start, epochs_run)
                if self.epoch % self.cfg.checkpoint_every == 0 or self.epoch == self.epochs:
                    self.save()
            return self.export()
        finally:
            if writer is not None:
                writer.close()
