"""Files that are what they claim to be: sealed torch files, safe loading, finite weights.

``torch.load(weights_only=True)`` refuses pickled code, but not corruption: a backbone export with a few
flipped bytes in a weight loads, trains with ``loss: nan`` and writes results at chance level. So every
torch file this project writes (backbone exports, Lightning checkpoints) is **sealed**: the SHA-256 of its
content (:func:`content_digest`: every tensor's dtype, shape and bytes, and every other value, in a
canonical order) is stored inside it under ``"integrity"``, and :func:`load_torch_file` recomputes and
compares it, and checks that the weights are finite.

Every refusal is a :class:`FileRefused` (a ``ValueError``) whose message names the file, what is wrong,
that it was not loaded, and what to do; the command line prints it as one ``error:`` line.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

INTEGRITY_KEY = "integrity"
#: What to do with a refused file of this project's own making.
REMAKE = "re-create it with this project (stage 1: `make backbone SPLIT=<split>`; stage 2: rerun `fit`)"


class FileRefused(ValueError):
    """A torch file that was not loaded: unreadable, corrupted, holding pickled objects, or non-finite."""


def _feed(digest: Any, value: Any) -> None:
    """Add ``value`` to ``digest`` canonically (dict keys sorted, tensors by dtype, shape and bytes)."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, Mapping):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    elif isinstance(value, (set, frozenset)):
        _feed(digest, sorted(value, key=repr))
    elif value is None or isinstance(value, (str, bytes, bool, int, float, complex)):
        digest.update(f"V{type(value).__name__}:{value!r};".encode())
    else:  # an object weights-only loading cannot return anyway: its type, not its address
        digest.update(f"O{type(value).__qualname__};".encode())


def content_digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``payload``'s content, its ``"integrity"`` entry left out."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != INTEGRITY_KEY})
    return digest.hexdigest()


def seal(payload: dict[str, Any]) -> dict[str, Any]:
    """Store ``payload``'s :func:`content_digest` in it (in place) and return it."""
    payload[INTEGRITY_KEY] = {"sha256": content_digest(payload)}
    return payload


def _tensors(value: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _tensors(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{prefix}[{i}]")


def check_finite(weights: Any, path: str | Path, what: str = "weights") -> None:
    """Refuse ``weights`` (a state dict, or any nest of tensors) holding a NaN or an infinity.

    Raises:
        FileRefused: naming ``path``, the first non-finite tensor and how many values are bad.
    """
    for name, tensor in _tensors(weights):
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise FileRefused(
                    f"{path}: {what} {name!r} holds {bad} non-finite value(s) (NaN or inf) of {tensor.numel()}; "
                    f"the file was not loaded. It is corrupted or comes from a diverged run: {REMAKE}"
                )


def verify(payload: Mapping[str, Any], path: str | Path) -> bool:
    """Check a loaded file's seal; ``False`` when it has none (written before files were sealed).

    Raises:
        FileRefused: the content differs from what was sealed (the file was corrupted after it was written).
    """
    record = payload.get(INTEGRITY_KEY)
    if not isinstance(record, Mapping) or "sha256" not in record:
        return False
    if content_digest(payload) != record["sha256"]:
        raise FileRefused(
            f"{path}: the content does not match the checksum recorded when it was written (the file is "
            f"corrupted: a bad copy, disk or transfer); it was not loaded. Copy it again from its origin, or {REMAKE}"
        )
    return True


def _refused_class(err: Exception) -> str:
    """The global a weights-only unpickler refused, as torch names it in its message ('' if it does not)."""
    text = str(err)
    for marker in ("Unsupported global: GLOBAL ", "Unsupported class "):
        if marker in text:
            return text.split(marker, 1)[1].split()[0].rstrip(".,")
    return ""


def load_torch_file(
    path: str | Path, what: str = "checkpoint", finite: str | None = "state_dict", map_location: Any = "cpu"
) -> Any:
    """Load a torch file as plain data only (``weights_only=True``), verify its seal and finite weights.

    Args:
        path: The file.
        what: What the file is, for messages ("backbone export", "checkpoint").
        finite: The entry whose tensors must be finite (``None``: no check).
        map_location: As for ``torch.load``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        FileRefused: the file holds pickled code or objects (never executed), is not a readable torch file,
            fails its seal, or holds non-finite weights.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = _refused_class(err)
        if not found:  # a damaged pickle stream, not a refused object
            raise FileRefused(
                f"{path}: not a readable {what} (its data cannot be decoded); it is truncated or corrupted and "
                f"was not loaded. Copy it again from its origin, or {REMAKE}"
            ) from None
        raise FileRefused(
            f"{path}: this {what} holds pickled Python objects ({found}), which could run "
            "code, so it was not loaded. Use a file written by this project (it holds plain data only): "
            f"{REMAKE}"
        ) from None
    except Exception as err:  # a damaged file fails anywhere in the decoder (KeyError, struct.error, ...)
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FileRefused(
            f"{path}: not a readable {what} ({reason}); it is truncated or corrupted and was not loaded. "
            f"Copy it again from its origin, or {REMAKE}"
        ) from None
    if isinstance(payload, Mapping):
        verify(payload, path)
        if finite is not None and finite in payload:
            check_finite(payload[finite], path)
    return payload
