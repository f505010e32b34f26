"""Inference backends for the MASA model: eager torch, OpenVINO on the CPU, TensorRT on CUDA.

:func:`accelerate` replaces the ``forward`` of the model's backbone, adapter (backbone maps → fused
pyramid), track head (RoI features → embeddings) and the detection head's RPN and box head with a
:class:`ConvertedPart`; :func:`accelerate_segmenter` does the same for SAM's prompt encoder + mask
decoder (masks). On the first input of a shape a part is converted, then the converted graph runs;
parts whose number of boxes varies (track head, box head, mask decoder) are converted once with that
dimension left open (OpenVINO only; under TensorRT they stay in torch). The modules keep their
class, weights and state dict, so every caller (the pipeline, masks, the detection head,
checkpoints) sees the same model; preprocessing, RoIAlign, anchors, box decoding and NMS run in
torch. A part that cannot convert is named in a warning and runs in torch from then on; the other
parts keep the backend. A batch of frames (``Pipeline.process_batch``) is another input shape: the
backbone and adapter are converted once more for each batch size, the batch dimension fixed like
the others (static shapes, which TensorRT needs for these parts and OpenVINO runs fastest; batch 4
gives the same pyramids as four batches of one), and OpenVINO caches that conversion under its own
key (the key holds the shapes), so entries of other batch sizes stay valid; TensorRT builds an
engine per batch size in memory. The track head and box head take any number of boxes, whatever
frames they come from. The TensorRT path (torch-tensorrt) has not been run yet: no GPU was
available where it was written.

OpenVINO graphs are converted once and cached on disk (:class:`IRCache`), keyed by variant, part,
input shape, weights sha256, OpenVINO and torch versions and device; an entry whose files do not
match their recorded sha256 (or cannot be read) is rebuilt with a warning.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from masa_core.errors import MasaError
from masa_core.models.deform_fusion import torchvision_kernel

LOG = logging.getLogger("masa_core.backends")

AUTO, TORCH, OPENVINO, TENSORRT = "auto", "torch", "openvino", "tensorrt"
BACKENDS = (AUTO, TORCH, OPENVINO, TENSORRT)
CACHE_FORMAT = 1

Runner = Callable[[list[Tensor]], list[Tensor]]


class BackendError(MasaError, ValueError):
    """The chosen backend cannot run here (package or device missing); one line, for the user."""


def installed(package: str) -> bool:
    """Whether ``package`` can be imported (without importing it)."""
    return importlib.util.find_spec(package) is not None


def resolve_backend(name: str, device: torch.device) -> str:
    """The concrete backend ``name`` stands for on ``device``; :class:`BackendError` where it cannot run.

    ``auto``: OpenVINO on the CPU and TensorRT (torch-tensorrt) on CUDA where installed, else torch.
    """
    if name not in BACKENDS:
        raise BackendError(f"backend = {name!r}: allowed are {', '.join(BACKENDS)}")
    if name == AUTO:
        if device.type == "cpu":
            return OPENVINO if installed("openvino") else TORCH
        return TENSORRT if device.type == "cuda" and installed("torch_tensorrt") else TORCH
    if name == OPENVINO:
        if device.type != "cpu":
            raise BackendError(f"backend = openvino runs on the CPU, not {device}; set device: cpu or backend: auto")
        if not installed("openvino"):
            raise BackendError("backend = openvino but the openvino package is missing: pip install openvino")
    if name == TENSORRT:
        if device.type != "cuda":
            raise BackendError(f"backend = tensorrt needs a CUDA device, the model runs on {device} (no CUDA GPU?)")
        if not installed("torch_tensorrt"):
            raise BackendError("backend = tensorrt but torch-tensorrt is missing: pip install torch-tensorrt")
    return name


def weights_sha256(module: nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and values of ``module``'s state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/masa_core`` (``~/.cache/masa_core``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "masa_core"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class IRCache:
    """OpenVINO IR files (``.xml`` + ``.bin``) on disk, one entry per key, each with a ``.json``
    recording the key and the files' sha256; the ``.json`` is written last, so an interrupted write
    leaves an entry that is rebuilt."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get_or_build(self, stem: str, key: dict[str, Any], build: Callable[[], Any]) -> Any:
        """The OpenVINO model stored under ``stem`` for ``key``, or ``build()``'s, saved first."""
        import openvino as ov

        paths = {ext: self.root / f"{stem}.{ext}" for ext in ("xml", "bin", "json")}
        if paths["json"].exists() or paths["xml"].exists():
            problem = self._check(paths, key)
            if problem is None:
                try:
                    return ov.Core().read_model(paths["xml"])
                except RuntimeError as e:
                    problem = f"unreadable ({str(e).splitlines()[0]})"
            LOG.warning("masa_core: cached OpenVINO model %s is %s; rebuilding it", paths["xml"], problem)
        model = build()
        try:
            self._save(model, paths, key)
        except OSError as e:  # a read-only or full disk costs the next start a conversion, nothing more
            LOG.warning(
                "masa_core: cannot cache the OpenVINO model in %s (%s); it is converted again next time", self.root, e
            )
        return model

    @staticmethod
    def _check(paths: dict[str, Path], key: dict[str, Any]) -> str | None:
        """None for a complete entry of ``key``, else what is wrong with it."""
        try:
            record = json.loads(paths["json"].read_text())
            if record.get("key") != key:
                return "stale (its key differs)"
            for ext in ("xml", "bin"):
                if file_sha256(paths[ext]) != record["sha256"][ext]:
                    return f"corrupt (its .{ext} does not match its sha256)"
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            return f"incomplete or corrupt ({type(e).__name__})"
        return None

    def _save(self, model: Any, paths: dict[str, Path], key: dict[str, Any]) -> None:
        """Write the entry atomically (temporary folder, then renames; the record last)."""
        import openvino as ov

        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            xml = Path(tmp) / "model.xml"
            ov.save_model(model, xml, compress_to_fp16=False)
            sha = {"xml": file_sha256(xml), "bin": file_sha256(xml.with_suffix(".bin"))}
            os.replace(xml.with_suffix(".bin"), paths["bin"])
            os.replace(xml, paths["xml"])
            record = Path(tmp) / "record.json"
            record.write_text(json.dumps({"key": key, "sha256": sha}, indent=1))
            os.replace(record, paths["json"])


LIST, TENSOR, TWO_LISTS = "list", "tensor", "two_lists"


@dataclass(frozen=True)
class Part:
    """A module the backend runs: its name, how it is called and what it returns.

    list_input: called with one list of tensors (the adapter's taps), else with tensors.
    output: ``list`` of tensors, one ``tensor``, or ``two_lists`` (a pair of equally long lists, the
    RPN's). dynamic: positions of the inputs whose first dimension varies from call to call (boxes),
    which the conversion leaves open instead of fixing.
    """

    name: str
    list_input: bool = False
    output: str = LIST
    dynamic: tuple[int, ...] = ()

    def flatten(self, out: Any) -> tuple[Tensor, ...]:
        """The part's output as a flat tuple of tensors (what a converted graph returns)."""
        if self.output == TENSOR:
            return (out,)
        if self.output == TWO_LISTS:
            return (*out[0], *out[1])
        return tuple(out)

    def unflatten(self, flat: list[Tensor]) -> Any:
        """Inverse of :meth:`flatten`."""
        if self.output == TENSOR:
            return flat[0]
        if self.output == TWO_LISTS:
            half = len(flat) // 2
            return flat[:half], flat[half:]
        return flat


class _Traceable(nn.Module):
    """``fn`` (a part's original forward) as a module over flat tensors, returning a tuple."""

    def __init__(self, part: nn.Module, fn: Callable[..., Any], spec: Part) -> None:
        super().__init__()
        self.part = part
        self.fn = fn
        self.spec = spec

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        return self.spec.flatten(self.fn(list(tensors)) if self.spec.list_input else self.fn(*tensors))


class OpenVINORuntime:
    """Converts a part with ``ov.convert_model`` (torchvision's deformable convolution, which maps to
    OpenVINO's), caches it and compiles it for the CPU in fp32, tuned for latency, with torch's number
    of threads. With a ``calibration`` (:class:`masa_core.models.quantize.Calibration`) the parts it
    names are quantized to INT8 by NNCF after conversion, on its inputs, and cached as such."""

    name, device, dynamic = OPENVINO, "cpu", True

    def __init__(self, variant: str, input_size: int, cache_dir: Path, calibration: Any = None) -> None:
        import openvino as ov

        self.ov = ov
        self.core = ov.Core()
        self.variant = variant
        self.input_size = input_size
        self.cache = IRCache(cache_dir)
        self.version = ov.get_version()
        self.calibration = calibration
        self.precision = "fp32" if calibration is None else f"fp32, int8 {' + '.join(calibration.parts)}"

    def compile(self, name: str, module: _Traceable, tensors: list[Tensor], weights: str) -> Runner:
        dynamic = module.spec.dynamic
        shapes = [[-1, *t.shape[1:]] if i in dynamic else list(t.shape) for i, t in enumerate(tensors)]
        key = {
            "format": CACHE_FORMAT,
            "variant": self.variant,
            "input_size": self.input_size,
            "part": name,
            "shapes": shapes,
            "weights_sha256": weights,
            "openvino": self.version,
            "torch": torch.__version__,
            "device": "CPU",
        }
        int8 = self.calibration is not None and name in self.calibration.parts
        if int8:
            key["int8"] = {"nncf": _nncf().__version__, "calibration_sha256": self.calibration.digest}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        stem = f"{self.variant}-{self.input_size}-{name}{'-int8' if int8 else ''}-{digest}"

        def build() -> Any:
            model = self._convert(module, tensors, shapes)
            return self._quantize(name, model, 1 if dynamic else len(tensors[0])) if int8 else model

        model = self.cache.get_or_build(stem, key, build)
        # As many threads as torch has (torch.set_num_threads is the one knob for both).
        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        config["INFERENCE_NUM_THREADS"] = torch.get_num_threads()
        compiled = self.core.compile_model(model, "CPU", config)
        request, outputs = compiled.create_infer_request(), len(compiled.outputs)

        def run(inputs: list[Tensor]) -> list[Tensor]:
            # Inputs are read in place (no copy); outputs are copied out of the request's buffers,
            # which the next call overwrites (the pipeline's feature cache keeps pyramids).
            request.infer([t.detach().contiguous().numpy() for t in inputs], share_inputs=True)
            return [torch.from_numpy(request.get_output_tensor(i).data.copy()) for i in range(outputs)]

        return run

    def _quantize(self, name: str, model: Any, batch: int) -> Any:
        """``model`` (part ``name``, converted for a batch of ``batch``) quantized to INT8 on the
        calibration inputs (NNCF's defaults for a CNN on the CPU: the ``PERFORMANCE`` preset)."""
        nncf = _nncf()
        data = self.calibration.inputs(name, batch)
        LOG.info("masa_core: quantizing the %s to INT8 on %d calibration inputs (once, then cached)", name, len(data))
        preset = nncf.QuantizationPreset.PERFORMANCE
        return nncf.quantize(model, nncf.Dataset(data), preset=preset, subset_size=len(data))

    def _convert(self, module: _Traceable, tensors: list[Tensor], shapes: list[list[int]]) -> Any:
        with torch.inference_mode(False), torch.no_grad(), torchvision_kernel(), warnings.catch_warnings():
            # Shapes are fixed per conversion, so the tracer's "treated as a constant" warnings do not apply.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", "`torch.jit.trace", FutureWarning)  # the converter still traces
            example = tuple(t.clone() for t in tensors)  # normal tensors: tracing refuses inference tensors
            # Traced here without torch's re-run check (half the conversion time); equality is tested.
            traced = torch.jit.trace(module, example, check_trace=False, strict=False)
            if not module.spec.dynamic:
                return self.ov.convert_model(traced, example_input=example)
            return self.ov.convert_model(traced, example_input=example, input=[self.ov.PartialShape(s) for s in shapes])


def _nncf() -> Any:
    """The nncf package, or :class:`BackendError` naming what to install."""
    if not installed("nncf"):
        raise BackendError("model.int8 needs the nncf package: pip install nncf")
    import nncf

    return nncf


class TensorRTRuntime:
    """Compiles a part with torch-tensorrt (dynamo) for the model's CUDA device, fp16 where the model
    is fp16; compiled in memory only (not cached on disk)."""

    name, device, dynamic = TENSORRT, "cuda", False  # parts whose box count varies stay in torch

    def __init__(self, dtype: torch.dtype) -> None:
        import torch_tensorrt

        self.trt = torch_tensorrt
        self.dtype = dtype
        self.precision = "fp16" if dtype == torch.float16 else "fp32"

    def compile(self, name: str, module: _Traceable, tensors: list[Tensor], weights: str) -> Runner:
        compiled = self.trt.compile(module, ir="dynamo", inputs=list(tensors), enabled_precisions={self.dtype})

        def run(inputs: list[Tensor]) -> list[Tensor]:
            return list(compiled(*inputs))

        return run


class ConvertedPart:
    """Stands in for a part's ``forward``: runs it through ``runtime``, converted once per input shape;
    falls back to the part's torch forward for good if conversion fails (with a warning naming it)."""

    def __init__(self, spec: Part, part: nn.Module, runtime: OpenVINORuntime | TensorRTRuntime) -> None:
        self.name = spec.name
        self.spec = spec
        self.runtime = runtime
        self.torch_forward = part.forward
        self.module = _Traceable(part, self.torch_forward, spec).eval()
        self.failed: str | None = None
        self._weights: str | None = None
        self._runners: dict[tuple, Runner] = {}

    def __call__(self, *args: Any) -> Any:
        if self.failed is not None or torch.is_grad_enabled():  # training, or a conversion that failed
            return self.torch_forward(*args)
        tensors = list(args[0]) if self.spec.list_input else list(args)
        dynamic = self.spec.dynamic
        shapes = tuple((tuple(t.shape[int(i in dynamic) :]), t.dtype) for i, t in enumerate(tensors))
        runner = self._runners.get(shapes)
        if runner is None:
            try:
                runner = self._runners[shapes] = self._convert(tensors)
            except Exception as e:
                self.failed = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                LOG.warning(
                    "masa_core: %s cannot run the %s (%s); it runs in torch", self.runtime.name, self.name, self.failed
                )
                return self.torch_forward(*args)
        return self.spec.unflatten(runner(tensors))

    def _convert(self, tensors: list[Tensor]) -> Runner:
        if self._weights is None:
            self._weights = weights_sha256(self.module.part)
        return self.runtime.compile(self.name, self.module, tensors, self._weights)


@dataclass(frozen=True)
class RuntimeInfo:
    """What runs the model: backend, device, precision (for the start-up line)."""

    backend: str
    device: str
    precision: str


def _parts(model: nn.Module) -> list[tuple[Part, nn.Module]]:
    """Backbone (image → taps), adapter (taps → fused pyramid), track head (RoI features →
    embeddings), the detection head's RPN (pyramid → objectness and deltas) and box head (RoI
    features → class logits and deltas), and parts added by :func:`accelerate_segmenter`."""
    head = model.adapter.detection_head
    return [
        (Part("backbone"), model.backbone),
        (Part("adapter", list_input=True), model.adapter),
        (Part("track_head", output=TENSOR, dynamic=(0,)), model.adapter.embed_head),
        (Part("rpn_head", list_input=True, output=TWO_LISTS), head.rpn_head),
        (Part("box_head", dynamic=(0,)), head.roi_head.bbox_head),
        *model.__dict__.get("extra_parts", []),
    ]


def _wrap(model: Any, parts: list[tuple[Part, nn.Module]]) -> None:
    """Hand ``parts`` to the model's runtime (set by :func:`accelerate`), where it can run them:
    each converts on its first call."""
    runtime = model.__dict__.get("backend_runtime")
    if runtime is None:
        return
    for spec, part in parts:
        if runtime.dynamic or not spec.dynamic:
            part.forward = ConvertedPart(spec, part, runtime)


def accelerate(model: Any, backend: str, cache_dir: str = "", calibration: Any = None) -> Any:
    """``model`` (a :class:`~masa_core.models.masa_model.MasaModel` in eval mode) with its parts
    (:func:`_parts`) run by ``backend`` (``auto`` resolved on the model's device); returns the same
    object. ``calibration``: quantize the parts it names to INT8 (OpenVINO only, see
    :mod:`masa_core.models.quantize`)."""
    name = resolve_backend(backend, model.device)
    if calibration is not None and name != OPENVINO:
        raise BackendError(f"model.int8 runs on the openvino backend (the CPU), not {name}")
    if calibration is not None:
        _nncf()  # missing: said now, not as a fallback at the first conversion
    precision = "fp16" if model.dtype == torch.float16 else "fp32"
    runtime: OpenVINORuntime | TensorRTRuntime | None = None
    if name == OPENVINO:
        runtime = OpenVINORuntime(
            model.variant, model.input_size, Path(cache_dir) if cache_dir else default_cache_dir(), calibration
        )
    elif name == TENSORRT:
        runtime = TensorRTRuntime(model.dtype)
    if runtime is not None:
        precision = runtime.precision
        model.__dict__["backend_runtime"] = runtime  # a plain attribute: not a module, not in the state dict
        _wrap(model, _parts(model))
    model.runtime = RuntimeInfo(name, model.device.type, precision)
    return model


def accelerate_segmenter(model: Any, segmenter: nn.Module) -> None:
    """Run ``segmenter``'s forward (SAM's prompt encoder + mask decoder: image embedding and boxes →
    mask logits, :class:`~masa_core.segmentation.box_prompt.BoxPromptSegmenter`) by the backend that
    runs ``model`` (none for torch), with the same cache and fallback; it is one of the model's
    parts from then on (:func:`converted_parts`, :func:`describe`)."""
    if "backend_runtime" not in model.__dict__:
        return
    part = (Part("mask_decoder", output=TENSOR, dynamic=(1,)), segmenter)
    model.__dict__.setdefault("extra_parts", []).append(part)
    _wrap(model, [part])


def converted_parts(model: nn.Module) -> dict[str, ConvertedPart]:
    """The parts of ``model`` that :func:`accelerate` handed to a backend, by name."""
    found = {spec.name: part.__dict__.get("forward") for spec, part in _parts(model)}
    return {name: forward for name, forward in found.items() if isinstance(forward, ConvertedPart)}


def describe(model: Any) -> str:
    """One line: variant, backend, device, precision, input size (and parts that fell back to torch)."""
    info = getattr(model, "runtime", None) or RuntimeInfo(TORCH, model.device.type, str(model.dtype).split(".")[-1])
    fallen = [n for n, p in converted_parts(model).items() if p.failed]
    note = f" ({', '.join(fallen)} in torch)" if fallen else ""
    return (
        f"model {model.variant}, backend {info.backend}{note}, device {info.device}, "
        f"precision {info.precision}, input {model.input_size} px"
    )


def unwrap(parts: Sequence[nn.Module]) -> None:
    """Give ``parts`` back their torch forward (undo :func:`accelerate`)."""
    for part in parts:
        part.__dict__.pop("forward", None)
