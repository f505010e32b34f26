"""A tiny, randomly initialised Grounding-DINO (Hugging Face ``transformers``) written to a folder
the way ``save_pretrained`` writes a real one: model, BERT word-piece tokenizer and image processor.
Built locally, nothing downloaded; it proves the plug-in's wiring, not its accuracy."""

from __future__ import annotations

from pathlib import Path

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "person", "car", "dog", "bicycle"]


def write_tiny_grounding_dino(folder: Path, seed: int = 0) -> Path:
    """Save a ~0.2 M-parameter Grounding-DINO (Swin 8-d, BERT 32-d, 2 decoder layers) in ``folder``."""
    import torch
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    backbone = SwinConfig(
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=4,
        out_features=["stage2", "stage3", "stage4"],
    )
    text = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    config = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,  # the box heads of decoder layers > 0 are tied to layer 0's: needs two
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=2,
        decoder_n_points=2,
        num_queries=20,
        max_text_len=32,
        use_pretrained_backbone=False,
        use_timm_backbone=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GroundingDinoForObjectDetection(config)
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 192}),
        tokenizer=BertTokenizer(str(vocab)),
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
