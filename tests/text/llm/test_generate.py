"""``describe``: prompts, answer parsing, retries and resuming, offline against a mock HTTP transport."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from purls_pl.text.descriptions import DescriptionSet, load_descriptions
from purls_pl.text.fields import FIELDS
from purls_pl.text.llm import generate
from purls_pl.text.llm.generate import GenerationConfig, GenerationError, MalformedAnswer, generate_descriptions
from purls_pl.text.llm.prompts import (
    BODY_PART_QUESTIONS,
    GLOBAL_QUESTIONS,
    PHASE_QUESTIONS,
    QUESTION_TYPES,
    build_prompt,
)

LABELS = ["drink water", "kicking other person", "hand waving"]
SECRET = "sk-test-SECRET-do-not-store-1234"


def good_answer(kind: str, label: str, k: int = 0) -> str:
    if kind == "body_parts":
        return (
            f"Head would: Look at {label} {k}.\nHands would: Move for {label} {k}.\n"
            f"Torso would: Lean for {label} {k}.\nLegs would: Stand for {label} {k}."
        )
    if kind == "phases":
        return "\n".join(f"{i}: The person would do part {i} of {label} {k}." for i in (1, 2, 3))
    return f"The person would perform {label} {k}."


class MockServer:
    """Answers chat completions; ``script`` maps (label, kind) to a list of per-request behaviours."""

    def __init__(self, labels: list[str], variants: int = 1) -> None:
        self.prompts = {
            build_prompt(kind, label, v): (label, kind)
            for label in labels
            for kind in QUESTION_TYPES
            for v in range(variants)
        }
        self.script: dict[tuple[str, str], list[Any]] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.auth: list[str] = []
        self.fail_on_label: str | None = None

    def per_label(self) -> Counter[str]:
        return Counter(label for label, _, _ in self.requests)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        label, kind = self.prompts[body["messages"][-1]["content"]]
        self.requests.append((label, kind, body))
        self.auth.append(request.headers.get("authorization", ""))
        if label == self.fail_on_label:
            raise RuntimeError("connection lost (simulated interruption)")
        queue = self.script.get((label, kind), [])
        step = queue.pop(0) if queue else None
        if isinstance(step, int):
            return httpx.Response(step, headers={"retry-after-ms": "1"}, json={"error": {"message": "slow down"}})
        n = body.get("n", 1)
        texts = [step] * n if isinstance(step, str) else [good_answer(kind, label, k) for k in range(n)]
        choices = [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in enumerate(texts)
        ]
        return httpx.Response(
            200, json={"id": "c", "object": "chat.completion", "created": 0, "model": body["model"], "choices": choices}
        )


def client_for(server: MockServer, max_retries: int = 2, api_key: str = SECRET) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=api_key,
        base_url="http://mock.local/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(server)),
        max_retries=max_retries,
    )


def test_normal_run_describes_every_field(tmp_path: Path) -> None:
    server = MockServer(LABELS)
    out = tmp_path / "set.json"
    result = generate_descriptions(LABELS, out, client_for(server), GenerationConfig(model="m-1", temperature=0.2))
    assert len(server.requests) == 3 * len(LABELS)
    body = server.requests[0][2]
    assert body["model"] == "m-1" and body["temperature"] == 0.2 and body["messages"][0]["role"] == "system"
    assert all(a == f"Bearer {SECRET}" for a in server.auth)
    loaded = load_descriptions(out)
    assert list(loaded.entries) == LABELS and not loaded.missing(LABELS)
    assert loaded.entries["drink water"]["head"] == ("look at drink water 0",)
    assert loaded.entries["drink water"]["end"] == ("do part 3 of drink water 0",)
    assert loaded.entries["hand waving"]["global"] == ("perform hand waving 0",)
    record = loaded.produced_by
    assert record["model"] == "m-1" and record["temperature"] == 0.2 and record["answers_per_question"] == 1
    assert record["date"] and record["questions"]["global"][0].startswith(GLOBAL_QUESTIONS[0])
    assert result.entries.keys() == loaded.entries.keys()
    assert SECRET not in out.read_text()


def test_several_answers_and_question_variants_are_kept_as_lists(tmp_path: Path) -> None:
    server = MockServer(["drink water"], variants=2)
    out = tmp_path / "set.json"
    generate_descriptions(["drink water"], out, client_for(server), GenerationConfig(answers=2, variants=2))
    assert len(server.requests) == 3 * 2 and all(body["n"] == 2 for _, _, body in server.requests)
    texts = load_descriptions(out).entries["drink water"]
    assert texts["head"] == ("look at drink water 0", "look at drink water 1")  # variants repeat: deduplicated
    assert all(len(texts[f]) == 2 for f in FIELDS)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limit_and_server_errors_are_retried_by_the_client(tmp_path: Path, status: int) -> None:
    server = MockServer(["drink water"])
    server.script[("drink water", "body_parts")] = [status]
    start = time.monotonic()
    generate_descriptions(["drink water"], tmp_path / "s.json", client_for(server, max_retries=2))
    assert time.monotonic() - start < 5
    assert [k for _, k, _ in server.requests].count("body_parts") == 2  # one refused, one retried
    assert not load_descriptions(tmp_path / "s.json").missing(["drink water"])


def test_malformed_answer_is_asked_again(tmp_path: Path) -> None:
    server = MockServer(["drink water"])
    server.script[("drink water", "body_parts")] = ["Head would: Look.\nHands would: Lift the cup."]
    server.script[("drink water", "phases")] = ["1: The person would a.\n2: The person would b."]
    generate_descriptions(["drink water"], tmp_path / "s.json", client_for(server))
    assert len(server.requests) == 5
    assert load_descriptions(tmp_path / "s.json").entries["drink water"]["legs"] == ("stand for drink water 0",)


def test_persistently_malformed_answer_names_class_and_raw_text(tmp_path: Path) -> None:
    server = MockServer(LABELS)
    server.script[("kicking other person", "global")] = ["I cannot help with that."] * 2 + ["Nope\nStill no"]
    with pytest.raises(GenerationError, match="kicking other person") as info:
        generate_descriptions(LABELS, tmp_path / "s.json", client_for(server), GenerationConfig(max_attempts=3))
    assert "Still no" in str(info.value) and "global" in str(info.value)
    assert server.per_label()["kicking other person"] == 3 + 2  # body parts, phases, then 3 global attempts
    assert list(load_descriptions(tmp_path / "s.json").entries) == ["drink water"]


def test_interrupted_run_resumes_without_asking_twice(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    first = MockServer(LABELS)
    first.fail_on_label = LABELS[2]
    with pytest.raises(RuntimeError, match="interruption"):
        generate_descriptions(LABELS, out, client_for(first))
    assert list(load_descriptions(out).entries) == LABELS[:2]
    second = MockServer(LABELS)
    generate_descriptions(LABELS, out, client_for(second))
    assert second.per_label() == Counter({LABELS[2]: 3})
    assert list(load_descriptions(out).entries) == LABELS and not load_descriptions(out).missing(LABELS)
    third = MockServer(LABELS)
    generate_descriptions(LABELS, out, client_for(third))
    assert not third.requests
    with pytest.raises(GenerationError, match="other settings"):
        generate_descriptions([*LABELS, "x"], out, client_for(third), GenerationConfig(model="other"))


def test_dry_run_needs_no_key_and_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("dry-run must not create a client")

    monkeypatch.setattr(openai, "OpenAI", forbidden)
    labels = tmp_path / "labels.txt"
    labels.write_text("drink water\n# comment\n\njump up\n")
    generate.main(["--classes", str(labels), "--dry-run", "--variants", "3"])
    printed = capsys.readouterr().out
    for questions in (BODY_PART_QUESTIONS, PHASE_QUESTIONS, GLOBAL_QUESTIONS):
        for q in questions:
            assert q.replace("<Action>", "jump up") in printed
    assert "Head would: {text}" in printed and "1: The person would {text}." in printed
    assert not list(tmp_path.glob("*.json"))


def test_cli_reads_key_from_environment_only_and_never_stores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = MockServer(LABELS)
    real = openai.OpenAI
    monkeypatch.setattr(
        openai, "OpenAI", lambda **kw: real(**kw, http_client=httpx.Client(transport=httpx.MockTransport(server)))
    )
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps(LABELS))
    out = tmp_path / "gen.json"
    generate.main(["--classes", str(classes), "--out", str(out), "--base-url", "http://mock.local/v1"])
    assert server.auth and all(a == f"Bearer {SECRET}" for a in server.auth)
    text = out.read_text()
    captured = capsys.readouterr()
    assert SECRET not in text and SECRET not in captured.out + captured.err
    assert json.loads(text)["produced_by"]["base_url"] == "http://mock.local/v1"
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(SystemExit, match="OPENAI_API_KEY is not set"):
        generate.main(["--classes", str(classes), "--out", str(tmp_path / "other.json")])


def test_recorded_base_url_drops_credentials() -> None:
    assert generate._public_url("https://user:pw@host.example:8443/v1?key=abc") == "https://host.example:8443/v1"


def test_label_only_writes_the_label_in_every_field(tmp_path: Path) -> None:
    out = tmp_path / "labels.json"
    generate.main(["--classes", "nw-ucla", "--out", str(out), "--label-only"])
    loaded = load_descriptions(out)
    assert len(loaded.entries) == 10
    assert all(texts[f] == (label,) for label, texts in loaded.entries.items() for f in FIELDS)
    assert isinstance(loaded, DescriptionSet) and loaded.produced_by["method"].startswith("label-only")


@pytest.mark.parametrize(
    ("kind", "answer", "expected"),
    [
        ("body_parts", "**Head would:** Tilt back.\n**Hands would:** Lift cup.\nTorso would: Lean.\nLegs would: Stand.",
         {"head": "tilt back", "hands": "lift cup", "torso": "lean", "legs": "stand"}),
        ("body_parts", "Head would: nod; Hand would: wave; Torso would: turn; Leg would: step",
         {"head": "nod", "hands": "wave", "torso": "turn", "legs": "step"}),
        ("phases", "1: The person would raise arm.\n2: The person would swing arm.\n3: The person would strike.",
         {"start": "raise arm", "middle": "swing arm", "end": "strike"}),
        ("phases", "Phase 1 (Start): raise arm. Phase 2: swing arm. Phase 3: hit TV",
         {"start": "raise arm", "middle": "swing arm", "end": "hit TV"}),
        ("global", "The person would raise their arm and throw the ball.", {"global": "raise their arm and throw the ball"}),  # noqa: E501
        ("global", "Sure.\n- The person would raise the arm\n", {"global": "raise the arm"}),
    ],
)  # fmt: skip
def test_parse_answer_formats(kind: str, answer: str, expected: dict[str, str]) -> None:
    assert generate.parse_answer(kind, answer) == expected


@pytest.mark.parametrize(
    ("kind", "answer", "reason"),
    [
        ("body_parts", "Head would: a\nHands would: b\nTorso would: c", "missing legs"),
        ("body_parts", "Head would: a\nHead would: b\nTorso would: c\nLegs would: d", "twice"),
        ("phases", "1: a\n2: b", "got 1, 2"),
        ("phases", "1: a\n2: b\n3: c\n4: d", "got 1, 2, 3, 4"),
        ("global", "The person would a.\nThe person would b.", "one line"),
        ("global", "The person would {text}.", "blank"),
        ("global", "   ", "empty"),
        ("global", "I cannot help with that.", "got 0"),
    ],
)
def test_parse_answer_rejects_malformed(kind: str, answer: str, reason: str) -> None:
    with pytest.raises(MalformedAnswer, match=reason):
        generate.parse_answer(kind, answer)
