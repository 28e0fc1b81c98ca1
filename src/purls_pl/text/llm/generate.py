"""Generate description sets with a language model: ``python -m purls_pl describe``.

For each class label the three questions of the paper (supplementary Table 1: body parts, phases,
global; :mod:`purls_pl.text.llm.prompts`) are sent through the ``openai`` client, the formatted answers
are parsed into the 8 fields and the class is saved at once (atomic write), so an interrupted run
resumes where it stopped and never asks twice for a finished class::

    export OPENAI_API_KEY=...   # read by the client from the environment, never stored
    python -m purls_pl describe --classes ntu120 --out descriptions/ntu120-gpt.json
    python -m purls_pl describe --classes my_labels.txt --out descriptions/mine.json --dry-run
    python -m purls_pl describe --classes ntu120 --out descriptions/ntu120-labels.json --label-only

Rate limits (429), timeouts and 5xx errors are retried with backoff by the client itself
(``max_retries``); malformed answers are re-asked up to ``max_attempts`` times.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from purls_pl.text.descriptions import DescriptionError, DescriptionSet, load_descriptions, save_descriptions
from purls_pl.text.fields import FIELDS
from purls_pl.text.llm.importers import clean_text, resolve_classes
from purls_pl.text.llm.prompts import MAX_VARIANTS, QUESTION_TYPES, SYSTEM_PROMPT, build_prompt, question_template

GENERATOR = "purls_pl.text.llm.generate"
#: Settings that must match for a run to resume (extend) an existing output file.
RESUME_KEYS: tuple[str, ...] = ("model", "temperature", "answers_per_question", "question_variants")


class MalformedAnswer(ValueError):
    """An answer does not follow the requested format."""


class GenerationError(RuntimeError):
    """A class could not be described (names the class and shows the raw answer)."""


@dataclass(frozen=True)
class GenerationConfig:
    """How descriptions are requested.

    Args:
        model: Chat model name.
        temperature: Sampling temperature.
        answers: Answers per question (``n``); several answers are stored as a list per field.
        variants: Question wordings asked per description type (1..3, supplementary Table 1).
        max_attempts: Requests per question before a malformed answer becomes an error.
    """

    model: str = "gpt-4o-mini"
    temperature: float = 0.7
    answers: int = 1
    variants: int = 1
    max_attempts: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.variants <= MAX_VARIANTS:
            raise ValueError(f"variants must be 1..{MAX_VARIANTS} (the wordings of supplementary Table 1)")
        if self.answers < 1 or self.max_attempts < 1:
            raise ValueError("answers and max_attempts must be at least 1")


_PART = re.compile(r"\b(head|hands?|torso|legs?)\**\s+would\s*\**\s*:", re.IGNORECASE)
_PART_NAMES = {"head": "head", "hand": "hands", "hands": "hands", "torso": "torso", "leg": "legs", "legs": "legs"}
_PHASE = re.compile(
    r"(?:^|;|\.\s)[\s*#>•-]*(?:phase|step)?\s*(\d+)\s*(?:\([^)\n]*\))?\s*\**\s*[:.)]", re.IGNORECASE | re.MULTILINE
)
_PERSON = re.compile(r"^[\s*#>•-]*(?:\d\s*[:.)]\s*)?the person would\b", re.IGNORECASE)


def _split_on(pattern: re.Pattern[str], text: str) -> list[tuple[str, str]]:
    """``(marker, first line of the text after it)`` for every marker match."""
    marks = list(pattern.finditer(text))
    out = []
    for i, m in enumerate(marks):
        chunk = text[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(text)].strip()
        out.append((m.group(1).lower(), chunk.splitlines()[0] if chunk else ""))
    return out


def parse_answer(kind: str, text: str | None) -> dict[str, str]:
    """Parse one formatted answer of ``kind`` into its fields.

    ``body_parts``: "Head would: ..." lines (or ``;``-separated); ``phases``: "1: The person would ...";
    ``global``: "The person would ...". Texts are cleaned with :func:`clean_text`.

    Raises:
        MalformedAnswer: a part is missing, repeated, empty, or the number of items is wrong.
    """
    if kind not in QUESTION_TYPES:
        raise KeyError(f"unknown question type {kind!r}")
    fields = QUESTION_TYPES[kind][2]
    if not text or not text.strip():
        raise MalformedAnswer("empty answer")
    if kind == "global":
        person = [ln for ln in text.splitlines() if _PERSON.match(ln)]
        if len(person) != 1:
            raise MalformedAnswer(f"expected one line 'The person would ...', got {len(person)}")
        found = [("global", person[0])]
    elif kind == "body_parts":
        found = [(_PART_NAMES[p], t) for p, t in _split_on(_PART, text)]
    else:
        found = [(n, t) for n, t in _split_on(_PHASE, text)]
        numbers = [n for n, _ in found]
        if numbers != [str(i + 1) for i in range(len(fields))]:
            raise MalformedAnswer(f"expected phases 1, 2, 3 in order, got {', '.join(numbers) or 'none'}")
        found = [(fields[int(n) - 1], t) for n, t in found]
    result: dict[str, str] = {}
    for name, raw in found:
        if name in result:
            raise MalformedAnswer(f"{name} is given twice")
        cleaned = clean_text(raw)
        if not cleaned:
            raise MalformedAnswer(f"{name} is empty or still a {{text}} blank")
        result[name] = cleaned
    absent = [f for f in fields if f not in result]
    if absent:
        raise MalformedAnswer(f"missing {', '.join(absent)}")
    return result


def make_client(base_url: str | None = None, max_retries: int = 6, timeout: float = 60.0) -> Any:
    """An ``openai.OpenAI`` client; the API key comes only from ``OPENAI_API_KEY`` in the environment.

    Retries with exponential backoff on 429, timeouts, connection errors and 5xx are the client's own
    (``max_retries``). A ``base_url`` server (vLLM, Ollama, ...) may run without a key.
    """
    import openai

    if not os.environ.get("OPENAI_API_KEY"):
        if base_url is None:
            raise GenerationError(
                "OPENAI_API_KEY is not set: export it in the environment (never put it in a file or config), "
                "or use --dry-run to only print the prompts, or --base-url for a server that needs no key"
            )
        return openai.OpenAI(api_key="unused", base_url=base_url, max_retries=max_retries, timeout=timeout)
    return openai.OpenAI(base_url=base_url, max_retries=max_retries, timeout=timeout)


def ask(client: Any, config: GenerationConfig, prompt: str, n: int) -> list[str | None]:
    """Send one question; return the ``n`` (or fewer, if the server ignores ``n``) raw answers."""
    extra: dict[str, Any] = {"n": n} if n > 1 else {}
    response = client.chat.completions.create(
        model=config.model,
        messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
        temperature=config.temperature,
        **extra,
    )
    return [choice.message.content for choice in response.choices]


def describe_label(client: Any, label: str, config: GenerationConfig) -> dict[str, list[str]]:
    """Ask every question (and wording variant) about ``label``; ``field -> answers`` (duplicates dropped)."""
    texts: dict[str, list[str]] = {f: [] for f in FIELDS}
    for kind in QUESTION_TYPES:
        for variant in range(config.variants):
            prompt = build_prompt(kind, label, variant)
            good: list[dict[str, str]] = []
            bad: tuple[str, str | None] | None = None
            for _attempt in range(config.max_attempts):
                for raw in ask(client, config, prompt, config.answers - len(good)):
                    try:
                        good.append(parse_answer(kind, raw))
                    except MalformedAnswer as err:
                        bad = (str(err), raw)
                if len(good) >= config.answers:
                    break
            if len(good) < config.answers:
                reason, raw = bad or ("the server returned fewer answers than requested (lower --answers)", "")
                raise GenerationError(
                    f"class {label!r}: the {kind} answer is malformed ({reason}) after {config.max_attempts} "
                    f"attempts with {config.model}; raw answer:\n{raw}\nRerun to retry (finished classes are "
                    "kept), raise --max-attempts or lower --temperature"
                )
            for answer in good[: config.answers]:
                for f, t in answer.items():
                    if t not in texts[f]:
                        texts[f].append(t)
    return texts


def _public_url(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def provenance(config: GenerationConfig, base_url: str | None = None) -> dict[str, Any]:
    """The ``produced_by`` record of a generated set (never contains the API key)."""
    try:
        from importlib.metadata import version

        client_version = version("openai")
    except Exception:  # pragma: no cover - metadata missing
        client_version = "unknown"
    return {
        "method": "generated by `python -m purls_pl describe`: the questions of PURLS supplementary Table 1",
        "generator": GENERATOR,
        "model": config.model,
        "base_url": _public_url(base_url),
        "temperature": config.temperature,
        "answers_per_question": config.answers,
        "question_variants": config.variants,
        "system_prompt": SYSTEM_PROMPT,
        "questions": {k: [question_template(k, v) for v in range(config.variants)] for k in QUESTION_TYPES},
        "openai_client": client_version,
        "date": _dt.date.today().isoformat(),
    }


def _existing(out: Path, record: dict[str, Any]) -> DescriptionSet | None:
    if not out.exists():
        return None
    done = load_descriptions(out)
    if done.entries and done.produced_by.get("generator") != GENERATOR:
        raise GenerationError(
            f"{out} exists and was not made by `describe` (produced_by: {done.produced_by.get('method')!r}); "
            "choose another --out, or pass --restart to replace it"
        )
    changed = [k for k in RESUME_KEYS if done.entries and done.produced_by.get(k) != record[k]]
    if changed:
        diff = ", ".join(f"{k}: file {done.produced_by.get(k)!r} vs now {record[k]!r}" for k in changed)
        raise GenerationError(
            f"{out} was generated with other settings ({diff}); use the same settings to resume, "
            "another --out, or --restart"
        )
    return done


def generate_descriptions(
    class_names: Sequence[str],
    out: str | Path,
    client: Any,
    config: GenerationConfig | None = None,
    name: str | None = None,
    base_url: str | None = None,
    restart: bool = False,
    progress: Callable[[str], None] | None = None,
) -> DescriptionSet:
    """Describe every class not yet complete in ``out``, saving the file after each class.

    Args:
        class_names: Labels to describe, in output order.
        out: Output JSON; an existing file from the same settings is resumed.
        client: An ``openai.OpenAI``-compatible client (see :func:`make_client`).
        config: Model and sampling settings.
        name: Set name (default: the file stem).
        base_url: Recorded in ``produced_by`` (without credentials).
        restart: Ignore an existing ``out`` and start over.
        progress: Called with one line per class.
    """
    config = config or GenerationConfig()
    out = Path(out)
    record = provenance(config, base_url)
    done = None if restart else _existing(out, record)
    entries: dict[str, dict[str, Any]] = {}
    if done is not None:
        record["date"] = done.produced_by.get("date", record["date"])
        entries = {label: {f: list(v) for f, v in t.items()} for label, t in done.entries.items()}
    name = name or (done.name if done else out.stem)
    current = done or DescriptionSet.from_records([], name=name, produced_by=record, source=str(out))
    todo = list(done.missing(class_names)) if done else list(class_names)
    say = progress or (lambda _msg: None)
    say(f"{len(class_names) - len(todo)} of {len(class_names)} classes already in {out}; describing {len(todo)}")
    for i, label in enumerate(todo, 1):
        texts = describe_label(client, label, config)
        for stale in [k for k in entries if k.lower().split() == label.lower().split()]:
            del entries[stale]  # an incomplete entry of this class from an earlier run
        entries[label] = texts
        record["updated"] = _dt.datetime.now().isoformat(timespec="seconds")
        order = {c: k for k, c in enumerate(class_names)}
        records = [{"label": lb, **t} for lb, t in sorted(entries.items(), key=lambda kv: order.get(kv[0], -1))]
        current = DescriptionSet.from_records(records, name=name, produced_by=record, source=str(out))
        save_descriptions(current, out)
        say(f"[{i}/{len(todo)}] {label}")
    return current


def dry_run(class_names: Sequence[str], config: GenerationConfig, write: Callable[[str], None] = print) -> None:
    """Print every prompt that would be sent, calling nothing."""
    write(f"# model {config.model}, temperature {config.temperature}, {config.answers} answer(s) per question")
    write(f"# system: {SYSTEM_PROMPT}")
    for label in class_names:
        for kind in QUESTION_TYPES:
            for variant in range(config.variants):
                write(f"## {label} | {kind} | variant {variant}\n{build_prompt(kind, label, variant)}\n")


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m purls_pl describe``."""
    parser = argparse.ArgumentParser(
        prog="python -m purls_pl describe",
        description="Generate the 8 descriptions per class (head, hands, torso, legs, start, middle, end, global) "
        "with a chat model, asking the questions of the PURLS supplementary Table 1. The API key is read from "
        "OPENAI_API_KEY only. Finished classes are saved at once; rerun the same command to resume.",
    )
    parser.add_argument(
        "--classes",
        required=True,
        help="dataset key (ntu120, kinetics400, nw-ucla, ...) or a file "
        "with one label per line or a JSON list of labels",
    )
    parser.add_argument("--out", help="output JSON, e.g. descriptions/ntu120-gpt.json (needed unless --dry-run)")
    parser.add_argument("--name", help="set name stored in the file (default: the dataset key or file stem)")
    parser.add_argument("--model", default=GenerationConfig.model, help="chat model (default: %(default)s)")
    parser.add_argument(
        "--temperature",
        type=float,
        default=GenerationConfig.temperature,
        help="sampling temperature (default: %(default)s)",
    )
    parser.add_argument(
        "--answers",
        type=int,
        default=1,
        help="answers per question, kept as a list per field and averaged by the encoder (default: 1, as in the paper)",
    )
    parser.add_argument(
        "--variants",
        type=int,
        default=1,
        help=f"question wordings per type, 1..{MAX_VARIANTS} (supplementary Table 1; default: 1)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=3,
        help="requests per question before a malformed answer is an error (default: %(default)s)",
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=6,
        help="client retries with backoff on 429, timeouts and 5xx (default: %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default: %(default)s)")
    parser.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://localhost:8000/v1")
    parser.add_argument("--restart", action="store_true", help="discard an existing --out instead of resuming it")
    parser.add_argument("--dry-run", action="store_true", help="print the prompts; call nothing, need no key")
    parser.add_argument(
        "--label-only",
        action="store_true",
        help="write every field = the label (no model; the 'Global (Original)' baseline)",
    )
    args = parser.parse_args(argv)
    try:
        names, default_name = resolve_classes(args.classes)
        config = GenerationConfig(args.model, args.temperature, args.answers, args.variants, args.max_attempts)
    except ValueError as err:
        raise SystemExit(f"describe: {err}") from None
    if args.dry_run:
        dry_run(names, config)
        return
    if not args.out:
        parser.error("--out is required (except with --dry-run)")
    if args.label_only:
        save_descriptions(DescriptionSet.label_only(names, name=args.name or default_name), args.out)
        print(f"wrote label-only descriptions of {len(names)} classes to {args.out}")
        return
    try:
        client = make_client(args.base_url, args.max_retries, args.timeout)
        result = generate_descriptions(
            names,
            args.out,
            client,
            config,
            args.name or default_name,
            args.base_url,
            args.restart,
            progress=lambda m: print(m, file=sys.stderr, flush=True),
        )
    except (GenerationError, DescriptionError) as err:
        raise SystemExit(f"describe: {err}") from None
    except KeyboardInterrupt:
        raise SystemExit(f"describe: interrupted; finished classes are in {args.out}, rerun to resume") from None
    except Exception as err:  # openai.APIError etc. after the client's own retries
        raise SystemExit(
            f"describe: {type(err).__name__}: {err}\nfinished classes are in {args.out}; rerun to "
            "resume (check OPENAI_API_KEY, --model and --base-url)"
        ) from None
    print(f"{args.out}: {len(result.entries)} classes described")
