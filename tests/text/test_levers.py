"""Text levers: the label-mix formula, alternatives kept, and the composed class text."""

import pytest
import torch
import torch.nn.functional as F

from purls_pl.text.descriptions import DescriptionSet
from purls_pl.text.encoder import TextEncoder, embed_descriptions
from purls_pl.text.fields import FIELDS, GLOBAL_INDEX
from purls_pl.text.levers import LABEL_PROMPT, TextOptions, embed_class_text, label_embeddings, mix_label


def test_label_mix_formula_on_hand_made_vectors():
    emb = torch.zeros(2, len(FIELDS), 2)
    emb[:, :, 0] = 1.0  # every field of both classes = e1
    labels = torch.tensor([[0.0, 1.0], [0.6, 0.8]])
    mixed = mix_label(emb, labels, 0.25)
    # class 0: normalize(0.75 e1 + 0.25 e2) = (3, 1) / sqrt(10)
    torch.testing.assert_close(mixed[0, GLOBAL_INDEX], torch.tensor([3.0, 1.0]) / 10**0.5)
    torch.testing.assert_close(mixed[1, GLOBAL_INDEX], F.normalize(torch.tensor([0.75 + 0.15, 0.2]), dim=0))
    torch.testing.assert_close(mixed[:, :GLOBAL_INDEX], emb[:, :GLOBAL_INDEX]), "only the global field changes"
    torch.testing.assert_close(mix_label(emb, labels, 1.0)[:, GLOBAL_INDEX], labels)
    torch.testing.assert_close(mix_label(emb, labels, 0.0), emb)
    legs = mix_label(emb, labels, 0.5, fields=("legs", "global"))
    assert not torch.allclose(legs[:, FIELDS.index("legs")], emb[:, FIELDS.index("legs")])
    assert torch.equal(legs[:, 0], emb[:, 0])
    with pytest.raises(ValueError, match="do not match"):
        mix_label(emb, labels[:1], 0.5)


def test_options_are_checked_and_round_trip():
    with pytest.raises(ValueError, match=r"label_mix must be in \[0, 1\]"):
        TextOptions(label_mix=1.5)
    with pytest.raises(ValueError, match="label_mix_fields"):
        TextOptions(label_mix=0.5, label_mix_fields=("feet",))
    with pytest.raises(ValueError, match="alternatives"):
        TextOptions(alternatives=-1)
    options = TextOptions(0.3, ("global", "legs"), 2)
    assert TextOptions.from_record(options.record()) == options
    assert TextOptions.from_record(None) == TextOptions() and not TextOptions().active


def _set(labels):
    return DescriptionSet.from_records(
        [{"label": c, **{f: [f"{f} first {c}", f"{f} second {c}"] for f in FIELDS}} for c in labels], "t"
    )


def test_class_text_applies_alternatives_and_label_mix(tiny_clip, tmp_path):
    enc = TextEncoder(str(tiny_clip), cache_dir=str(tmp_path))
    labels = ["wave", "kick"]
    ds = _set(labels)
    torch.testing.assert_close(embed_class_text(enc, ds, labels), embed_descriptions(enc, ds, labels))
    first = embed_class_text(enc, ds, labels, "plain", TextOptions(alternatives=1))
    torch.testing.assert_close(first[1, 0], enc.encode(["head first kick"])[0])
    lab = label_embeddings(enc, labels)
    torch.testing.assert_close(lab, enc.encode([LABEL_PROMPT.format(c) for c in labels]))
    mixed = embed_class_text(enc, ds, labels, "plain", TextOptions(label_mix=0.4))
    plain = embed_descriptions(enc, ds, labels, "plain")
    torch.testing.assert_close(mixed[:, GLOBAL_INDEX], F.normalize(0.6 * plain[:, GLOBAL_INDEX] + 0.4 * lab, dim=-1))
    torch.testing.assert_close(mixed[:, :GLOBAL_INDEX], plain[:, :GLOBAL_INDEX])
