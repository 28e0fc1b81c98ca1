"""Text towers: MiniLM (offline package), a tiny random CLIP saved locally, and the embedding cache."""

import pytest
import torch

from purls_pl.text.descriptions import DescriptionSet
from purls_pl.text.encoder import TextEncoder, embed_descriptions
from purls_pl.text.fields import FIELDS, GLOBAL_INDEX
from purls_pl.text.templates import PAPER_TEMPLATES, resolve_templates


def _descriptions(labels):
    return DescriptionSet.from_records([{"label": c, **{f: f"{f} moves for {c}" for f in FIELDS}} for c in labels], "t")


def test_clip_path_uses_projected_embeddings(tiny_clip, tmp_path):
    from transformers import AutoTokenizer, CLIPTextModelWithProjection

    enc = TextEncoder(str(tiny_clip), cache_dir=str(tmp_path))
    out = enc.encode(["a person waves", "a person kicks"])
    assert out.shape == (2, 24)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2))
    model = CLIPTextModelWithProjection.from_pretrained(tiny_clip).eval()
    tok = AutoTokenizer.from_pretrained(tiny_clip)(["a person waves"], return_tensors="pt")
    ref = torch.nn.functional.normalize(model(**tok).text_embeds, dim=-1)
    torch.testing.assert_close(out[:1], ref, rtol=1e-4, atol=1e-5)


def test_minilm_sentence_encoder_is_semantic(tmp_path):
    enc = TextEncoder("minilm", cache_dir=str(tmp_path))
    e = enc.encode(["a person waves a hand", "someone waving their hand", "a car engine"])
    assert e.shape == (3, 384)
    assert (e[0] @ e[1]) > (e[0] @ e[2]) + 0.2


def test_embedding_cache_hit_and_miss(tiny_clip, tmp_path, monkeypatch):
    enc = TextEncoder(str(tiny_clip), cache_dir=str(tmp_path))
    calls = []
    real = TextEncoder.encode
    monkeypatch.setattr(TextEncoder, "encode", lambda self, texts: calls.append(len(texts)) or real(self, texts))
    labels = ["wave", "kick", "clap"]
    first = embed_descriptions(enc, _descriptions(labels), labels)
    assert first.shape == (3, 8, 24) and calls == [24]
    again = embed_descriptions(enc, _descriptions(labels), labels)
    assert calls == [24], "unchanged descriptions must come from the cache"
    torch.testing.assert_close(first, again)
    changed = _descriptions(labels)
    changed.entries["kick"]["legs"] = ("swing one leg forward hard",)
    third = embed_descriptions(enc, changed, labels)
    assert calls == [24, 24], "a changed description re-encodes"
    assert not torch.allclose(third[1, 3], first[1, 3]) and torch.allclose(third[0], first[0])
    embed_descriptions(enc, _descriptions(labels), labels, templates="plain")
    assert len(calls) == 3, "changed templates re-encode"
    assert len(list((tmp_path / "text").glob("*.pt"))) == 3


def test_damaged_cache_is_rebuilt(tiny_clip, tmp_path):
    enc = TextEncoder(str(tiny_clip), cache_dir=str(tmp_path))
    first = enc.encode_cached(["x"])
    (cache,) = (tmp_path / "text").glob("*.pt")
    cache.write_bytes(b"garbage")
    torch.testing.assert_close(enc.encode_cached(["x"]), first)


def test_alternative_answers_are_averaged(tiny_clip, tmp_path):
    enc = TextEncoder(str(tiny_clip), cache_dir=str(tmp_path))
    ds = _descriptions(["wave"])
    ds.entries["wave"]["head"] = ("nod", "tilt")
    emb = embed_descriptions(enc, ds, ["wave"], templates="plain")
    parts = enc.encode(["nod", "tilt"])
    torch.testing.assert_close(emb[0, 0], torch.nn.functional.normalize(parts.mean(0), dim=0))


def test_templates():
    assert resolve_templates("paper") == PAPER_TEMPLATES
    assert resolve_templates({"global": "the person would {}."})["global"] == "the person would {}."
    with pytest.raises(ValueError):
        resolve_templates({"head": "no placeholder"})
    with pytest.raises(ValueError):
        resolve_templates("fancy")


def test_label_placeholder_in_templates(tiny_clip, tmp_path):
    from purls_pl.text.templates import LABELLED_TEMPLATES, render, template_problem

    assert render("A video of {label}: {}.", "wave a hand.", "hand waving") == "A video of hand waving: wave a hand."
    assert render("the person would {}.", "nod", "x") == "the person would nod.", "old templates render as before"
    assert LABELLED_TEMPLATES["legs"] == "A cropped video of people's leg motions that {label}: {}."
    assert resolve_templates("labelled") == LABELLED_TEMPLATES
    assert template_problem("{label} {label} {}") and template_problem("{x} {}") and template_problem("{label}")
    with pytest.raises(ValueError, match=r"field 'legs'.*unknown placeholders \['name'\]"):
        resolve_templates({"legs": "{name}: {}"})
    with pytest.raises(ValueError, match="unknown fields"):
        resolve_templates({"feet": "{}"})
    enc = TextEncoder(str(tiny_clip), cache_dir=str(tmp_path))
    ds = _descriptions(["wave", "kick"])
    emb = embed_descriptions(enc, ds, ["wave", "kick"], templates={f: "{label}: {}" for f in FIELDS})
    torch.testing.assert_close(emb[1, 3], enc.encode(["kick: legs moves for kick"])[0])
    paper = embed_descriptions(enc, ds, ["wave", "kick"], templates="labelled")
    expected = LABELLED_TEMPLATES["global"].format("global moves for wave", label="wave")
    assert expected == "A video of people's motion that wave: global moves for wave."
    torch.testing.assert_close(paper[0, GLOBAL_INDEX], enc.encode([expected])[0])


def test_three_answers_per_field_are_averaged_and_one_keeps_the_first(tiny_clip, tmp_path, repo):
    from purls_pl.text.descriptions import load_descriptions

    enc = TextEncoder(str(tiny_clip), cache_dir=str(tmp_path))
    multi = load_descriptions(repo / "descriptions" / "nw-ucla-multi.json")
    single = load_descriptions(repo / "descriptions" / "nw-ucla.json")
    names = ["throw", "carry"]
    emb = embed_descriptions(enc, multi, names, templates="plain")
    answers = multi.entries["throw"]["legs"]
    assert len(answers) == 3
    torch.testing.assert_close(emb[0, 3], torch.nn.functional.normalize(enc.encode(list(answers)).mean(0), dim=0))
    torch.testing.assert_close(
        embed_descriptions(enc, multi.with_alternatives(1), names), embed_descriptions(enc, single, names)
    )


def test_encoding_logs_progress_lines(tiny_clip, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PURLS_PROGRESS_SECONDS", "0")
    enc = TextEncoder(str(tiny_clip), batch_size=2, cache_dir=str(tmp_path))
    with caplog.at_level("INFO", logger="purls_pl.progress"):
        enc.encode_cached([f"a person does move {i}" for i in range(5)])
    lines = [r.getMessage() for r in caplog.records if r.name == "purls_pl.progress"]
    assert [line.split(", ")[0] for line in lines] == [
        f"encoding text with {tiny_clip}: {n}/5 prompts ({p}%)" for n, p in ((2, 40), (4, 80), (5, 100))
    ]
    assert lines[0].endswith(" left") and lines[-1].endswith(" elapsed, done")
