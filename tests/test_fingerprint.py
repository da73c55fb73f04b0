"""Backbone.fingerprint is computed once per loaded model, and never goes stale when the tables change."""

from __future__ import annotations

import hashlib

import pytest
import torch


def _fresh(bb) -> str:
    bb._fingerprint = None
    return bb.fingerprint()


def test_fingerprint_is_computed_once(tiny_sd_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    from ticraft.models.load import load_backbone

    bb = load_backbone(str(tiny_sd_dir))
    first = bb.fingerprint()
    monkeypatch.setattr(hashlib, "sha256", lambda *a: pytest.fail("the fingerprint was hashed again"))
    assert bb.fingerprint() == first


def test_fingerprint_follows_casts_and_writes(tiny_sd_dir) -> None:
    from ticraft.models.load import load_backbone

    bb = load_backbone(str(tiny_sd_dir))
    fp32 = bb.fingerprint()
    table = bb.encoders[0].table
    with torch.no_grad():
        table[0, 0] += 1.0  # an in-place write (ticraft never does this; the cache must still notice)
    written = bb.fingerprint()
    assert written != fp32 and written == _fresh(bb)
    with torch.no_grad():
        table[0, 0] -= 1.0
    assert bb.fingerprint() == _fresh(bb)
    bb.to(dtype=torch.float16)
    half = bb.fingerprint()
    assert half == _fresh(bb)
    bb.encoders[0].model.to(torch.float32)  # behind the backbone's back: new storage, new key
    assert bb.fingerprint() == _fresh(bb)
