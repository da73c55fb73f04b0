"""Load a frozen text-to-image model and give uniform access to its text side.

A :class:`Backbone` holds the diffusers/transformers components of one model (tokenizer(s), text
encoder(s), UNet, VAE, scheduler), its family (``sd1``, ``sd2``, ``sdxl``, ``toy``, ``custom``),
and the splice points where concept vectors enter the text encoders (:mod:`ticraft.models.splice`).

Model specs accepted by :func:`ticraft.models.load.load_backbone`:

* ``"toy"`` — ticraft's shipped toy model (``ticraft/toyworld/weights``);
* a diffusers pipeline folder (``model_index.json`` inside);
* a single ``.safetensors``/``.ckpt`` checkpoint (see :mod:`ticraft.models.single_file`);
* a hub id such as ``runwayml/stable-diffusion-v1-5`` **already in the local Hugging Face cache**
  (nothing is ever downloaded).

>>> bb = load_backbone("toy")                       # doctest: +SKIP
>>> bb.family, [e.key for e in bb.encoders]         # doctest: +SKIP
('toy', ['clip'])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ticraft.concept import Concept
from ticraft.errors import TicraftError
from ticraft.models.splice import SplicedEmbedding, splice
from ticraft.prompts import placeholder_names


class BackboneError(TicraftError):
    """The model could not be found, loaded, or does not fit a concept."""


@dataclass
class TextEncoder:
    """One tokenizer + text encoder pair and its splice point."""

    key: str  # concept vector key: "clip" | "clip_l" | "clip_g" | "t5"
    tokenizer: Any  # transformers.CLIPTokenizer | T5TokenizerFast
    model: nn.Module  # CLIPTextModel | CLIPTextModelWithProjection | T5EncoderModel
    embedding: SplicedEmbedding
    kind: str = "clip"  # "clip" | "t5" (SD3/Flux: models/mmdit.py)

    @property
    def dim(self) -> int:
        return self.embedding.embedding_dim

    @property
    def table(self) -> torch.Tensor:
        """The frozen token-embedding table ``[V, D]`` (never modified by ticraft)."""
        return self.embedding.base.weight

    def token_strings(self) -> list[str]:
        """Readable vocabulary, row order (``</w>`` stripped; ids beyond the tokenizer are ``<id>``)."""
        from ticraft.models.t5 import readable_piece

        inv = {i: t for t, i in self.tokenizer.get_vocab().items()}
        return [readable_piece(inv[i]) if i in inv else f"<{i}>" for i in range(self.table.shape[0])]


@dataclass
class Backbone:
    """A loaded, frozen text-to-image model."""

    name: str
    family: str
    source: str
    encoders: list[TextEncoder]
    unet: nn.Module
    vae: nn.Module
    scheduler: Any
    pipeline_class: str = "StableDiffusionPipeline"
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. SDXL's force_zeros_for_empty_prompt
    _concepts: dict[str, Concept] = field(default_factory=dict)
    _fingerprint: tuple[Any, str] | None = field(default=None, repr=False, compare=False)

    # ---------------------------------------------------------------- basics
    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def dims(self) -> dict[str, int]:
        return {e.key: e.dim for e in self.encoders}

    def encoder(self, key: str) -> TextEncoder:
        for e in self.encoders:
            if e.key == key:
                return e
        raise BackboneError(f"model {self.name} has no text encoder {key!r} (it has {[e.key for e in self.encoders]})")

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "Backbone":
        for m in self.modules():
            m.to(device=device, dtype=dtype)
        self._fingerprint = None  # a cast changes the table's values (the key below also notices new storage)
        return self

    def modules(self) -> list[nn.Module]:
        return [e.model for e in self.encoders] + [self.unet, self.vae]

    def fingerprint(self) -> str:
        """A short stable id of the model (name + table shapes + a table checksum) for caches and metadata.

        The token tables are frozen, so the checksum is computed once per loaded model and kept. It is
        keyed on each table's storage, dtype, device and in-place version counter, so moving or casting
        the model (or writing into a table) computes it again instead of returning a stale id.
        """
        import hashlib

        key = (self.family, tuple((e.table.data_ptr(), e.table.dtype, str(e.table.device), tuple(e.table.shape),
                                   e.table._version) for e in self.encoders))
        if self._fingerprint is not None and self._fingerprint[0] == key:
            return self._fingerprint[1]
        h = hashlib.sha256(self.family.encode())
        for e in self.encoders:
            t = e.table.detach().float().cpu()
            h.update(str(tuple(t.shape)).encode())
            h.update(f"{float(t.sum()):.6e}{float(t.abs().sum()):.6e}".encode())
        value = h.hexdigest()[:16]
        self._fingerprint = (key, value)
        return value

    # ------------------------------------------------------------- concepts
    def check_concept(self, concept: Concept) -> None:
        """Raise a clear :class:`BackboneError` if ``concept`` does not fit this model."""
        if concept.family and self.family not in ("custom",) and concept.family != self.family:
            raise BackboneError(
                f"concept {concept.token} was learned for {concept.family}, but model {self.name} is {self.family}"
            )
        if concept.dims != self.dims:
            raise BackboneError(
                f"concept {concept.token} has vectors {concept.dims}, model {self.name} expects {self.dims}"
            )

    def placeholder_tokens(self, token: str, n: int) -> list[str]:
        """Tokenizer tokens standing for the ``n`` vectors of ``token`` (diffusers' ``tok``, ``tok_1``, …)."""
        return placeholder_names(token, n)

    def add_placeholder(self, token: str, vectors: dict[str, torch.Tensor]) -> dict[str, list[int]]:
        """Make ``token`` (with ``len(vectors)`` rows) usable in prompts; return its ids per encoder.

        ``vectors`` values may be ``nn.Parameter``s: gradients then flow into them and nowhere else.
        """
        n = {v.shape[0] for v in vectors.values()}
        if len(n) != 1 or set(vectors) != {e.key for e in self.encoders}:
            raise BackboneError(
                f"vectors for {token} must cover encoders {[e.key for e in self.encoders]} with one count")
        names = self.placeholder_tokens(token, n.pop())
        out: dict[str, list[int]] = {}
        for e in self.encoders:
            vocab = e.tokenizer.get_vocab()
            # Tokens ticraft added before (a concept loaded, unloaded, reloaded) may be reused; a word of
            # the model's own vocabulary may not — as a word piece ("cat") or a whole word ("cat</w>").
            added = set(e.tokenizer.get_added_vocab()) - set(e.tokenizer.all_special_tokens)
            fresh = [t for t in names if t not in vocab]
            if names[0] not in added and (names[0] in vocab or names[0] + "</w>" in vocab):
                raise BackboneError(
                    f"token {token!r} is already a word of the {e.key} tokenizer; "
                    f"choose another placeholder, e.g. <{token.strip('<>')}-x>"
                )
            if fresh:
                e.tokenizer.add_tokens(fresh)
            ids = e.tokenizer.convert_tokens_to_ids(names)
            e.embedding.set_block(token, ids, vectors[e.key])
            out[e.key] = list(ids)
        return out

    def load_concept(self, concept: Concept) -> dict[str, list[int]]:
        """Splice a library concept in, so that its token works in prompts."""
        self.check_concept(concept)
        vecs = {k: v.to(device=self.device) for k, v in concept.vectors.items()}
        if concept.token in self._concepts:
            self.unload_concept(concept.token)
        if concept.layers > 1:  # per-layer (P+/XTI) concept: one vector set per cross-attention layer
            from ticraft.models.layers import load_layered

            ids = load_layered(self, concept)
            self._concepts[concept.token] = concept
            return ids
        ids = self.add_placeholder(concept.token, vecs)
        self._concepts[concept.token] = concept
        return ids

    def unload_concept(self, token: str) -> None:
        loaded = self._concepts.get(token)
        if loaded is not None and loaded.layers > 1:
            from ticraft.models.layers import unsplice_layers

            unsplice_layers(self, token, loaded.layers, loaded.num_vectors)
        for e in self.encoders:
            e.embedding.remove_block(token)
        self._concepts.pop(token, None)

    @property
    def loaded_concepts(self) -> dict[str, Concept]:
        return dict(self._concepts)

    def token_vector(self, word: str, key: str | None = None) -> dict[str, torch.Tensor]:
        """The table rows a plain word tokenizes to, per encoder (``[n_tokens, D]``)."""
        out = {}
        for e in self.encoders if key is None else [self.encoder(key)]:
            ids = e.tokenizer(word, add_special_tokens=False)["input_ids"]
            if not ids:
                raise BackboneError(f"{word!r} has no tokens in the {e.key} tokenizer")
            out[e.key] = e.table[torch.tensor(ids, device=e.table.device)].detach().clone()
        return out

    # ------------------------------------------------------------ pipelines
    def pipeline(self, kind: str = "text2img") -> Any:
        """A diffusers pipeline built from the loaded components (no second copy of the weights)."""
        import diffusers

        from ticraft.models.mmdit import build_pipeline, is_flow

        if is_flow(self):  # SD3 / Flux: a transformer and T5 (models/mmdit.py)
            return build_pipeline(self, kind)
        base = self.pipeline_class.replace("Pipeline", "")
        suffix = {"text2img": "Pipeline", "img2img": "Img2ImgPipeline", "inpaint": "InpaintPipeline"}[kind]
        cls = getattr(diffusers, base + suffix)
        kwargs: dict[str, Any] = dict(vae=self.vae, unet=self.unet, scheduler=self.scheduler)
        if self.family == "sdxl":
            kwargs.update(
                text_encoder=self.encoders[0].model, tokenizer=self.encoders[0].tokenizer,
                text_encoder_2=self.encoders[1].model, tokenizer_2=self.encoders[1].tokenizer,
            )
            if "force_zeros_for_empty_prompt" in self.extra:
                kwargs["force_zeros_for_empty_prompt"] = self.extra["force_zeros_for_empty_prompt"]
        else:
            kwargs.update(
                text_encoder=self.encoders[0].model, tokenizer=self.encoders[0].tokenizer,
                safety_checker=None, feature_extractor=None, requires_safety_checker=False,
            )
        pipe = cls(**kwargs)
        pipe.set_progress_bar_config(disable=True)
        return pipe


# ----------------------------------------------------------------- loading
def detect_family(index: dict[str, Any], text_hidden: list[int], folder: Path | None = None) -> str:
    """Family from a pipeline's model_index.json class name and its text encoder widths.

    A folder holding the toy world's provenance record (written by ``ticraft toyworld train-base``) is the toy
    model wherever it lies: a copy of the shipped weights is ``toy``, not ``custom``.
    """
    if folder is not None and (Path(folder) / "ticraft_toyworld.json").is_file():
        return "toy"
    cls = index.get("_class_name", "")
    from ticraft.models.mmdit import family_of_index

    if flow := family_of_index(index):
        return flow
    if "XL" in cls:
        return "sdxl"
    if text_hidden == [768]:
        return "sd1"
    if text_hidden == [1024]:
        return "sd2"
    return "custom"


def load_diffusers_folder(folder: Path, *, family: str | None = None, name: str | None = None) -> Backbone:
    """Load a diffusers pipeline folder's components directly (no pipeline object, no safety checker)."""
    import diffusers
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    folder = Path(folder)
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise BackboneError(f"{folder} is not a diffusers pipeline folder: model_index.json is missing")
    index = json.loads(index_path.read_text())
    from ticraft.models.mmdit import family_of_index, load_flow_folder

    if family_of_index(index):  # SD3 / Flux: transformer + T5
        return load_flow_folder(folder, index, family=family, name=name)
    xl = "XL" in index.get("_class_name", "")
    needed = ["tokenizer", "text_encoder", "unet", "vae", "scheduler"]
    needed += ["tokenizer_2", "text_encoder_2"] if xl else []
    missing = [c for c in needed if not (folder / c).is_dir()]
    if missing:
        raise BackboneError(f"model folder {folder} lacks {', '.join(missing)}")

    def sched_cls() -> Any:
        cname = index.get("scheduler", [None, "DDIMScheduler"])[1]
        return getattr(diffusers, cname, diffusers.DDIMScheduler)

    try:
        encoders = []
        pairs: list[tuple[str, str, str, Any]] = [
            ("tokenizer", "text_encoder", "clip_l" if xl else "clip", CLIPTextModel)]
        if xl:
            pairs.append(("tokenizer_2", "text_encoder_2", "clip_g", CLIPTextModelWithProjection))
        for tok_dir, enc_dir, key, enc_cls in pairs:
            tok = CLIPTokenizer.from_pretrained(folder / tok_dir, local_files_only=True)
            model = enc_cls.from_pretrained(folder / enc_dir, local_files_only=True)
            encoders.append(_prepare_encoder(key, tok, model))
        unet = diffusers.UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True)
        vae = diffusers.AutoencoderKL.from_pretrained(folder / "vae", local_files_only=True)
        scheduler = sched_cls().from_pretrained(folder / "scheduler", local_files_only=True)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise BackboneError(f"could not load the model in {folder}: {exc}") from exc
    for m in [e.model for e in encoders] + [unet, vae]:
        m.requires_grad_(False)
        m.eval()
    fam = family or detect_family(index, [e.dim for e in encoders], folder=folder)
    extra = {}
    if xl and "force_zeros_for_empty_prompt" in index:
        extra["force_zeros_for_empty_prompt"] = index["force_zeros_for_empty_prompt"]
    return Backbone(
        name=name or folder.name, family=fam, source=str(folder), encoders=encoders, unet=unet, vae=vae,
        scheduler=scheduler, pipeline_class=index.get("_class_name", "StableDiffusionPipeline"), extra=extra,
    )


def _prepare_encoder(key: str, tokenizer: Any, model: nn.Module) -> TextEncoder:
    # Pooled outputs pick the EOS position. Configs with the legacy eos_token_id=2 pick the *largest*
    # id instead, which becomes our placeholder once tokens are added: point them at the real EOS.
    for module in model.modules():
        if hasattr(module, "eos_token_id") and not isinstance(module, SplicedEmbedding):
            module.eos_token_id = tokenizer.eos_token_id
    if hasattr(model, "config"):
        model.config.eos_token_id = tokenizer.eos_token_id  # type: ignore[union-attr]
    emb = splice(model)
    return TextEncoder(key=key, tokenizer=tokenizer, model=model, embedding=emb)


def components_from_pipeline(pipe: Any, *, family: str | None = None, name: str = "pipeline") -> Backbone:
    """Wrap an already-built diffusers pipeline (e.g. a test's tiny one) as a Backbone."""
    if getattr(pipe, "transformer", None) is not None:  # SD3 / Flux
        from ticraft.models.mmdit import from_pipeline

        return from_pipeline(pipe, name=name, family=family)
    xl = hasattr(pipe, "text_encoder_2") and pipe.text_encoder_2 is not None
    encoders = [_prepare_encoder("clip_l" if xl else "clip", pipe.tokenizer, pipe.text_encoder)]
    if xl:
        encoders.append(_prepare_encoder("clip_g", pipe.tokenizer_2, pipe.text_encoder_2))
    for m in [e.model for e in encoders] + [pipe.unet, pipe.vae]:
        m.requires_grad_(False)
        m.eval()
    cls = type(pipe).__name__
    fam = family or detect_family({"_class_name": cls}, [e.dim for e in encoders])
    return Backbone(name=name, family=fam, source=name, encoders=encoders, unet=pipe.unet, vae=pipe.vae,
                    scheduler=pipe.scheduler, pipeline_class=cls)
