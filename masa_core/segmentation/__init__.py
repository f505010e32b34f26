"""Instance masks for tracks: SAM box prompts on the backbone's image embedding, and MOTS RLE."""

from masa_core.segmentation.box_prompt import BoxPromptSegmenter, box_window, paste_mask
from masa_core.segmentation.rle import decode, encode

__all__ = ["BoxPromptSegmenter", "box_window", "decode", "encode", "paste_mask"]
