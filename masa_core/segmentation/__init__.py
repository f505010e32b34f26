"""Instance masks for tracks: SAM box prompts on the backbone's image embedding (MOTS files: formats.rle)."""

from masa_core.segmentation.box_prompt import BoxPromptSegmenter, box_window, paste_mask

__all__ = ["BoxPromptSegmenter", "box_window", "paste_mask"]
