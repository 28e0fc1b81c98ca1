"""Sealed torch files: corruption, pickled objects and non-finite weights are refused, naming the file."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch

from purls_pl.integrity import FileRefused, check_finite, content_digest, load_torch_file, seal, verify
from purls_pl.storage import atomic_torch_save


def _payload() -> dict:
    return {"state_dict": {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3)}, "meta": {"epochs": 3}}


def test_the_digest_sees_every_value_and_no_key_order():
    a = _payload()
    b = {"meta": {"epochs": 3}, "state_dict": {"b": torch.zeros(3), "w": torch.arange(6.0).reshape(2, 3)}}
    assert content_digest(a) == content_digest(b)
    changed = _payload()
    changed["state_dict"]["w"][1, 2] = 5.0000005
    assert content_digest(changed) != content_digest(a)
    assert content_digest({**a, "meta": {"epochs": 4}}) != content_digest(a)
    reshaped = _payload()
    reshaped["state_dict"]["w"] = reshaped["state_dict"]["w"].reshape(3, 2)  # same bytes, other shape
    assert content_digest(reshaped) != content_digest(a)
    assert content_digest(seal(_payload())) == content_digest(a)  # the seal itself is left out


def test_a_sealed_file_loads_and_a_flipped_byte_is_refused(tmp_path):
    path = atomic_torch_save(seal(_payload()), tmp_path / "export.pt")
    loaded = load_torch_file(path, what="backbone export")
    assert torch.equal(loaded["state_dict"]["w"], _payload()["state_dict"]["w"]) and verify(loaded, path)
    data = bytearray(path.read_bytes())
    offset = bytes(data).index(torch.arange(6.0).numpy().tobytes()) + 9  # inside the weight's storage
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(FileRefused, match=rf"^{path}: the content does not match the checksum.*Copy it again"):
        load_torch_file(path)


def test_an_unsealed_file_still_loads(tmp_path):
    path = atomic_torch_save(_payload(), tmp_path / "old.pt")  # written before files were sealed
    assert not verify(load_torch_file(path), path)


def test_truncated_and_foreign_files_are_refused(tmp_path):
    path = atomic_torch_save(seal(_payload()), tmp_path / "export.pt")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(FileRefused, match=r"not a readable checkpoint .*truncated or corrupted and was not loaded"):
        load_torch_file(path)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(FileRefused, match=r"notes\.pt: not a readable checkpoint"):
        load_torch_file(text)
    with pytest.raises(FileNotFoundError, match=r"checkpoint .*missing\.pt does not exist"):
        load_torch_file(tmp_path / "missing.pt")


Point = collections.namedtuple("Point", "x y")


def test_a_pickled_object_is_refused_without_advice_to_turn_the_check_off(tmp_path):
    path = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "callback": Point(1, 2)}, path)
    with pytest.raises(FileRefused) as refused:
        load_torch_file(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: this checkpoint holds pickled Python objects (")
    assert "Point" in message and "was not loaded" in message and "re-create it with this project" in message
    assert "weights_only" not in message and "trust" not in message


def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path):
    payload = _payload()
    payload["state_dict"]["b"][1] = float("nan")
    path = atomic_torch_save(seal(payload), tmp_path / "diverged.pt")  # sealed: the file is intact, the run is not
    with pytest.raises(FileRefused, match=r"diverged\.pt: weights 'b' holds 1 non-finite value\(s\)"):
        load_torch_file(path)
    check_finite({"steps": torch.tensor([1, 2])}, Path("x"))  # integer tensors have no NaN
