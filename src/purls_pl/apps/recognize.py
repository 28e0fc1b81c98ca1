"""Open-vocabulary recognition with a trained PURLS checkpoint: any action names, any skeleton file.

::

    python -m purls_pl recognize --ckpt <run>/checkpoints/last.ckpt \\
        --candidates "drink water,pick up with two hands,sit down" a01_s01_e00_v03.json clip.npy
    # Python
    from purls_pl.apps.recognize import recognize
    ranked = recognize("last.ckpt", ["a01_s01_e00_v03.json"], ["drink water", "sit down"])
    # -> [[("sit down", 0.41), ("drink water", 0.12)]]  (cosine similarity, best first)

Inputs: a file of any reader's format (an NTU ``.skeleton``, a Kinetics-skeleton clip ``.json``, an NW-UCLA
``all_sqe`` ``.json``, a Penn Action ``.mat``, a ``.npy`` array ``(T, J, C)`` / ``(M, T, J, C)``; the list is
:func:`purls_pl.data.readers.file_readers`), or such an array in Python. Each is read by its reader's
``read_file`` and prepared by the checkpoint's recorded
:class:`~purls_pl.data.preprocessing.Preprocessing` (its ``apply``): the calls the reader made on its own
files, so a file is prepared exactly as the training data were. The file's skeleton layout must be the
model's.

Candidate text: a description file (``--descriptions``; the 8 fields per class, as in
``descriptions/``) for the classes it covers. A missing file is generated with the chat model when
``OPENAI_API_KEY`` is set (``purls_pl.text.llm.generate``, saved there for next time); classes left without
descriptions fall back to label-only text (every field is the label), with a warning. Text is wrapped
in the checkpoint's prompt templates and embedded by its text tower, and each candidate is scored as
at test time (its global description queries the partitioner; Eq. 5-6).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from purls_pl.data.preprocessing import Preprocessing
from purls_pl.data.readers import file_readers, recorded_preprocessing
from purls_pl.data.readers import prepare_sample as read_and_prepare
from purls_pl.models.method import ZeroShotMethod
from purls_pl.text.descriptions import DescriptionSet, load_descriptions
from purls_pl.text.encoder import TextEncoder
from purls_pl.text.fields import FIELDS
from purls_pl.text.levers import TextOptions, embed_class_text, label_embeddings
from purls_pl.text.llm.generate import generate_descriptions, make_client

log = logging.getLogger(__name__)

SampleInput = str | Path | np.ndarray
Ranking = list[tuple[str, float]]


# ------------------------------------------------------------------ skeleton inputs
def prepare_sample(sample: SampleInput, spec: Mapping[str, Any] | Preprocessing) -> np.ndarray:
    """Read and preprocess one sample as the training data were: ``(M, T, J, C)`` for the model.

    The file is read by its dataset's reader and prepared by the recorded preprocessing's ``apply``, the
    calls the reader made on its own files (:func:`purls_pl.data.readers.prepare_sample`).

    Args:
        sample: A skeleton file of any reader's format, or an array ``(T, J, C)`` / ``(M, T, J, C)``.
        spec: The checkpoint's ``preprocess`` record (older checkpoints' records too), or the
            :class:`~purls_pl.data.preprocessing.Preprocessing` itself.
    """
    return read_and_prepare(sample, Preprocessing.from_mapping(spec))


# ------------------------------------------------------------------ candidate text
def candidate_descriptions(
    candidates: Sequence[str], descriptions: str | Path | DescriptionSet | None
) -> DescriptionSet:
    """Descriptions of every candidate: from the set/file where complete, generated into a missing file
    when ``OPENAI_API_KEY`` is set, else label-only (with a warning naming the classes)."""
    found: DescriptionSet | None = descriptions if isinstance(descriptions, DescriptionSet) else None
    if isinstance(descriptions, (str, Path)):
        path = Path(descriptions)
        if not path.is_file() and os.environ.get("OPENAI_API_KEY"):
            log.info("generating descriptions of %d candidates into %s", len(candidates), path)
            found = generate_descriptions(list(candidates), path, make_client(), progress=log.info)
        elif path.is_file():
            found = load_descriptions(path)
        else:
            warnings.warn(f"{path} does not exist and OPENAI_API_KEY is not set: label-only text", stacklevel=2)
    missing = set(found.missing(candidates)) if found is not None else set(candidates)
    if found is not None and missing:
        warnings.warn(f"no complete descriptions for {sorted(missing)}: label-only text for them", stacklevel=2)
    records = []
    for name in candidates:
        texts = {f: name for f in FIELDS} if name in missing else found.texts_for([name])[0]  # type: ignore[union-attr]
        records.append({"label": name, **{f: list(v) if not isinstance(v, str) else v for f, v in texts.items()}})
    return DescriptionSet.from_records(records, name="candidates")


def checkpoint_encoder(spec: dict[str, Any], text_model: str | None = None) -> TextEncoder:
    """The text tower a checkpoint was trained with (or ``text_model`` instead)."""
    text = dict(spec.get("text") or {})
    if text_model is not None:
        text["model"] = text_model
    if "model" not in text:
        raise ValueError("the checkpoint records no text tower (saved without a datamodule): pass text_model=")
    return TextEncoder(**text)


def candidate_text(
    candidates: Sequence[str],
    spec: dict[str, Any],
    descriptions: str | Path | DescriptionSet | None = None,
    text_model: str | None = None,
    templates: str | dict[str, str] | None = None,
) -> torch.Tensor:
    """``(K, 8, m)`` description embeddings of the candidates, with the checkpoint's tower, templates and text
    levers (``text_options``: label mix, alternatives kept)."""
    encoder = checkpoint_encoder(spec, text_model)
    options = TextOptions.from_record(spec.get("text_options"))  # the levers the model was trained with
    return embed_class_text(
        encoder,
        candidate_descriptions(candidates, descriptions),
        list(candidates),
        templates or spec.get("templates") or "paper",
        options,
    )


# ------------------------------------------------------------------ recognition
def _load(checkpoint: str | Path | ZeroShotMethod, device: str) -> ZeroShotMethod:
    if isinstance(checkpoint, ZeroShotMethod):
        return checkpoint.eval()
    return ZeroShotMethod.from_checkpoint(checkpoint, map_location=device)


def checkpoint_record(module: ZeroShotMethod) -> dict[str, Any]:
    """The checkpoint's ``purls`` record of a rebuilt method; a ``ValueError`` when it records no preprocessing or
    was trained on released pooled features (nothing to prepare a skeleton for)."""
    spec = module.checkpoint_spec or {}
    if spec.get("preprocess") is None:
        raise ValueError(
            "the checkpoint records no preprocessing (saved without a datamodule): recognise with a checkpoint "
            "written by `python -m purls_pl fit`"
        )
    if module.backbone.pooled:
        raise ValueError(
            "the checkpoint was trained on released pooled features (model.backbone ReleasedFeatures): it scores "
            "feature vectors of that extraction, not skeletons; score them in Python with "
            "module.score(features[:, None, :], text), or train on the skeletons (stage 1, then stage 2) to "
            "recognise files and videos"
        )
    return spec


def candidate_inputs(
    module: ZeroShotMethod,
    candidates: Sequence[str],
    descriptions: str | Path | DescriptionSet | None = None,
    text_model: str | None = None,
    templates: str | dict[str, str] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """What :meth:`~purls_pl.models.method.ZeroShotMethod.score` takes for the candidates, on the module's device:
    their text ``(K, D, m)`` in the method's fields and (methods that use them) label embeddings ``(K, m)``."""
    spec = checkpoint_record(module)
    fields = list(module.text_fields)  # the fields' text the method scores with (global last)
    text = candidate_text(candidates, spec, descriptions, text_model, templates)[:, fields]
    if text.shape[-1] != module.text_dim:
        raise ValueError(
            f"the text tower gives {text.shape[-1]}-d embeddings; the model was trained on {module.text_dim}-d ones"
        )
    labels = None
    if module.uses_label_embeddings:  # e.g. PURLS' label fusion or label field
        labels = label_embeddings(checkpoint_encoder(spec, text_model), list(candidates)).to(module.device)
    return text.to(module.device), labels


@torch.no_grad()
def score_prepared(
    module: ZeroShotMethod, x: torch.Tensor, text: torch.Tensor, labels: torch.Tensor | None, batch_size: int = 32
) -> torch.Tensor:
    """``(N, K)`` scores of prepared samples ``x`` ``(N, M, T, J, C)`` against :func:`candidate_inputs`' text."""
    rows = [
        module.score(module.node_features(x[i : i + batch_size].to(module.device)), text, labels).float().cpu()
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(rows) if rows else torch.zeros((0, len(text)))


@torch.no_grad()
def recognize(
    checkpoint: Any,
    samples: Sequence[SampleInput],
    candidates: Sequence[str],
    descriptions: str | Path | DescriptionSet | None = None,
    *,
    device: str = "cpu",
    text_model: str | None = None,
    templates: str | dict[str, str] | None = None,
    batch_size: int = 32,
) -> list[Ranking]:
    """Rank ``candidates`` for each sample.

    Args:
        checkpoint: A checkpoint path of any method (or a :class:`~purls_pl.models.method.ZeroShotMethod`
            rebuilt by ``from_checkpoint``).
        samples: Skeleton files (of any reader's format, e.g. ``.skeleton``, ``.json``, ``.mat``, ``.npy``) or
            arrays.
        candidates: Action names, any (they need not be classes of the training set).
        descriptions: A description file / set for the candidates (see the module docstring).
        device: Where the model runs.
        text_model: Override the checkpoint's text tower (a HuggingFace id or local directory).
        templates: Override the checkpoint's prompt templates.
        batch_size: Samples per forward pass.

    Returns:
        Per sample, ``(name, score)`` for every candidate, best first; scores are cosine similarities
        of the global skeleton and text embeddings (Eq. 5-6).
    """
    if not candidates:
        raise ValueError("recognize needs at least one candidate action name")
    module = _load(checkpoint, device)
    spec = checkpoint_record(module)
    text, labels = candidate_inputs(module, candidates, descriptions, text_model, templates)
    preprocessing = recorded_preprocessing(spec["preprocess"], spec.get("source"))
    x = torch.from_numpy(np.stack([prepare_sample(s, preprocessing) for s in samples]))
    scores = score_prepared(module, x, text, labels, batch_size)
    out = []
    for row in scores:
        order = row.argsort(descending=True).tolist()
        out.append([(candidates[k], float(row[k])) for k in order])
    return out


# ------------------------------------------------------------------ command
def main(argv: Sequence[str] | None = None) -> list[Ranking]:
    """``python -m purls_pl recognize --ckpt <ckpt> --candidates "a,b,c" <skeleton files>``."""
    parser = argparse.ArgumentParser(
        prog="python -m purls_pl recognize",
        description="Rank any action names for skeleton files with a trained PURLS checkpoint (open vocabulary).",
    )
    formats = "; ".join(reader.file_format for reader in file_readers())
    parser.add_argument("samples", nargs="+", help=f"skeleton files, each one of: {formats}")
    parser.add_argument("--ckpt", required=True, help="PURLS checkpoint, e.g. <run>/checkpoints/last.ckpt")
    parser.add_argument(
        "--candidates", required=True, help="comma-separated action names, or a file with one name per line"
    )
    parser.add_argument(
        "--descriptions", help="description JSON for the candidates (generated if missing and OPENAI_API_KEY is set)"
    )
    parser.add_argument("--text-model", help="override the checkpoint's text tower (HuggingFace id or directory)")
    parser.add_argument("--top-k", type=int, default=5, help="classes printed per sample (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON list per sample instead of a table")
    args = parser.parse_args(argv)
    source = Path(args.candidates)
    names = source.read_text().splitlines() if source.is_file() else args.candidates.split(",")
    names = [n.strip() for n in names if n.strip()]
    try:
        ranked = recognize(
            args.ckpt, args.samples, names, args.descriptions, device=args.device, text_model=args.text_model
        )
    except ValueError as err:  # bad input (layout, shape, empty file): one message, exit status 2
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    for sample, ranking in zip(args.samples, ranked):
        top = ranking[: args.top_k]
        if args.json:
            print(json.dumps({"sample": str(sample), "ranking": [[n, round(s, 6)] for n, s in top]}))
            continue
        print(sample)
        for rank, (name, score) in enumerate(top, 1):
            print(f"  {rank:>2}. {name:<40} {score:+.4f}")
    return ranked
