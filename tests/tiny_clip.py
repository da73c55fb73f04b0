"""A tiny random CLIP (text + vision) saved like a real local CLIP folder, for the analysis tests (offline)."""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_clip_folder(folder: str | Path) -> Path:
    """Write a 32-px, 16-d-projection CLIPModel with its tokenizer and image processor into ``folder``."""
    from tiny_models import write_tiny_tokenizer
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    folder = Path(folder)
    write_tiny_tokenizer(folder)
    tok = CLIPTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                         num_attention_heads=4, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                           num_attention_heads=4),
        projection_dim=16,
    )
    CLIPModel(cfg).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder
