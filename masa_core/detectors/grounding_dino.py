"""Optional plug-in: open-vocabulary Grounding-DINO through Hugging Face ``transformers``.

Needs ``pip install transformers`` (tested with 5.24) and a model directory on disk (e.g. a saved
``IDEA-Research/grounding-dino-tiny``); nothing is downloaded. Imported on construction. With
MASA-R50 as the tracker this is MASA's open-vocabulary tracking (config/masa_r50_gdino.yaml,
docs/model_zoo.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from masa_core.boxes import clip_boxes
from masa_core.detectors.base import Detections
from masa_core.errors import MissingPackageError

INSTALL_HINT = "pip install transformers"


def parse_prompt(prompt: str) -> tuple[str, ...]:
    """Class names from a Grounding-DINO prompt: ``"person . car."`` → ``("person", "car")``.

    Names are lower-cased, stripped and de-duplicated in order; commas also separate names.
    """
    names: list[str] = []
    for part in prompt.replace(",", ".").split("."):
        name = " ".join(part.lower().split())
        if name and name not in names:
            names.append(name)
    return tuple(names)


def format_prompt(names: tuple[str, ...]) -> str:
    """The prompt form the model was trained on: ``"person . car ."``."""
    return " . ".join(names) + " ."


def match_phrase(phrase: str, names: tuple[str, ...]) -> int | None:
    """Index of the class a predicted phrase refers to, or None.

    Exact match first; else the longest class name contained in the phrase; else the class name
    that contains the phrase (the model may return only some of a name's tokens).
    """
    phrase = " ".join(phrase.lower().split())
    if not phrase:
        return None
    if phrase in names:
        return names.index(phrase)
    inside = [i for i, n in enumerate(names) if n in phrase]
    if inside:
        return max(inside, key=lambda i: len(names[i]))
    around = [i for i, n in enumerate(names) if phrase in n]
    return around[0] if around else None


class GroundingDINO:
    """Zero-shot detector for the classes named in ``text_prompt`` (e.g. ``"person . car ."``).

    ``box_thr`` keeps boxes whose best token score passes it; ``text_thr`` selects the tokens
    that form the predicted phrase, which is then matched to a prompt class (boxes whose phrase
    matches no class are dropped).
    """

    def __init__(
        self,
        model_dir: str | Path,
        text_prompt: str,
        box_thr: float = 0.35,
        text_thr: float = 0.25,
        device: str = "cpu",
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor
        except ImportError as err:
            raise MissingPackageError(
                f"the 'grounding_dino' detector needs the transformers package: {INSTALL_HINT} ({err})"
            ) from err
        self.class_names: tuple[str, ...] = parse_prompt(text_prompt)
        if not self.class_names:
            raise ValueError(f"text_prompt {text_prompt!r} names no class; use e.g. 'person . car .'")
        if not Path(model_dir).is_dir():
            raise FileNotFoundError(f"Grounding-DINO model directory not found: {model_dir}")
        self._torch: Any = torch
        self._processor: Any = AutoProcessor.from_pretrained(str(model_dir), local_files_only=True)
        model = AutoModelForZeroShotObjectDetection.from_pretrained(str(model_dir), local_files_only=True)
        self._model: Any = model.to(device).eval()
        self.prompt = format_prompt(self.class_names)
        self.box_thr = float(box_thr)
        self.text_thr = float(text_thr)
        self.device = device

    def _post_process(self, outputs: Any, input_ids: Any, size: tuple[int, int]) -> dict[str, Any]:
        """Run the processor's post-processing under either keyword spelling of the box threshold."""
        post = self._processor.post_process_grounded_object_detection
        common = {"text_threshold": self.text_thr, "target_sizes": [size]}
        try:
            return post(outputs, input_ids, threshold=self.box_thr, **common)[0]
        except TypeError:  # transformers < 4.49 names it box_threshold
            return post(outputs, input_ids, box_threshold=self.box_thr, **common)[0]

    def __call__(self, frame: np.ndarray, frame_index: int = 0) -> Detections:
        h, w = frame.shape[:2]
        inputs = self._processor(images=frame, text=self.prompt, return_tensors="pt").to(self.device)
        with self._torch.no_grad():
            outputs = self._model(**inputs)
        result = self._post_process(outputs, inputs["input_ids"], (h, w))
        # transformers >= 4.51 gives the phrases as text_labels (reading labels there warns)
        phrases = result["text_labels"] if "text_labels" in result else result.get("labels", [])
        labels = [match_phrase(str(p), self.class_names) for p in phrases]
        keep = np.array([lab is not None for lab in labels], dtype=bool)
        if not keep.any():
            return Detections.empty()
        boxes = result["boxes"].detach().cpu().numpy().reshape(-1, 4)
        boxes = clip_boxes(boxes, w, h)
        scores = result["scores"].detach().cpu().numpy().reshape(-1)
        return Detections(boxes[keep], scores[keep], np.array([lab for lab in labels if lab is not None]))
