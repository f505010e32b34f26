"""Reading and writing checkpoints safely: ``torch.load(weights_only=True)`` only, and every
mismatch reported by key."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from masa_core.errors import MasaError

FORMAT = "masa_ros/adapter"
FORMAT_VERSION = 1


class CheckpointError(MasaError, ValueError):
    """A checkpoint cannot be read, is unsafe, or does not fit the model."""


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a checkpoint file: a bare state dict, or one under ``state_dict`` / ``model``.

    Only ``weights_only`` unpickling is used, so a file that needs code execution is refused.
    """
    return tensors_of(read_checkpoint(path), path)


def tensors_of(obj: Mapping, path: str | Path) -> dict[str, Tensor]:
    """The tensors of a loaded checkpoint dictionary: itself, or its ``state_dict`` / ``model``."""
    for key in ("state_dict", "model"):
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors: not a model checkpoint")
    return tensors


def read_checkpoint(path: str | Path) -> dict:
    """The dictionary stored in a checkpoint, loaded with ``weights_only=True`` on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "GLOBAL" not in str(e).upper():  # not a pickle of objects at all: random or damaged bytes
            raise CheckpointError(f"cannot read checkpoint {path}: not a PyTorch checkpoint, or corrupt") from e
        raise CheckpointError(
            f"refusing {path}: it needs code execution to unpickle, which weights_only loading does not "
            f"allow ({str(e).splitlines()[0]})"
        ) from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, LookupError, TypeError) as e:
        # a text file or damaged bytes fail deep inside the unpickler (KeyError, IndexError, ...)
        raise CheckpointError(f"cannot read checkpoint {path}: truncated or corrupt ({type(e).__name__}: {e})") from e
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a dictionary of tensors")
    return dict(obj)


def check_state_dict(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Raise :class:`CheckpointError` naming missing, unexpected and mis-shaped keys."""
    check_state_dict_keys(model.state_dict(), state, source, type(model).__name__)


def check_state_dict_keys(
    own: Mapping[str, Tensor], state: Mapping[str, Tensor], source: str, target: str, hint: str = ""
) -> None:
    """:func:`check_state_dict` against the expected tensors ``own`` of ``target``; ``hint`` ends the message."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        parts = [f"checkpoint {source} does not fit {target}:"]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape", shapes)):
            if items:
                shown = ", ".join(items[:10]) + (f", ... ({len(items)} in all)" if len(items) > 10 else "")
                parts.append(f"{title}: {shown}")
        if hint:
            parts.append(hint)
        raise CheckpointError("\n  ".join(parts))


def save_adapter(
    path: str | Path,
    module: nn.Module,
    variant: str,
    meta: Mapping | None = None,
    half: bool = False,
    omit: tuple[str, ...] = (),
) -> None:
    """Write ``module``'s weights with the variant name, atomically (temp file, then rename).

    half: floating tensors stored as float16 (half the size; loading casts them back).
    omit: key prefixes left out (e.g. ``("detection_head.",)`` when only tracking is shipped); the
    loader then keeps the module's own values for them and checks everything else strictly.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
        for k, v in module.state_dict().items()
        if not k.startswith(omit)
    }
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "variant": variant,
        "meta": dict(meta or {}),
        "omitted": list(omit),
        "state_dict": state,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_adapter(path: str | Path, module: nn.Module, variant: str) -> dict:
    """Load weights written by :func:`save_adapter` into ``module`` strictly; returns its meta."""
    obj = read_checkpoint(path)
    if obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a masa_ros adapter checkpoint (format {obj.get('format')!r})")
    if obj.get("variant") != variant:
        raise CheckpointError(f"{path} is for variant {obj.get('variant')!r}, but the model is {variant!r}")
    state = obj.get("state_dict")
    omitted = tuple(obj.get("omitted") or ())
    if not isinstance(state, Mapping) or not all(isinstance(p, str) and p for p in omitted):
        raise CheckpointError(f"{path} has no state_dict")
    own = {k: v for k, v in module.state_dict().items() if not k.startswith(omitted)}
    check_state_dict_keys(own, state, str(path), type(module).__name__)
    module.load_state_dict(state, strict=not omitted)  # shapes and keys checked above; dtypes are cast
    return dict(obj.get("meta") or {})
