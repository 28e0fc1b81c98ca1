"""Description sets from other sources, and checking sets against a dataset's classes.

* ``python -m purls_pl import-descriptions <file.xlsx|file.csv|file.json> [--sheet NAME] --out descriptions/<set>.json``
  reads a table laid out like the paper's supplementary spreadsheet (one sheet per dataset; columns
  action label, head, hands, torso, legs, start, middle, end, global description; headers matched
  case-insensitively and loosely), or a hand-written JSON (the project's ``{"classes": [...]}`` shape,
  a list of records, or ``{label: {field: text}}``), checked field by field.
* ``python -m purls_pl validate-descriptions descriptions/<set>.json --dataset ntu120`` lists what is
  missing per class (exit code 1) or prints a one-line OK.
* ``python -m purls_pl merge-descriptions a.json b.json --out descriptions/<set>-multi.json`` joins sets
  into one with several answers per field (``--alternatives K`` keeps the first K).

Also the helpers the ``describe`` command shares: :func:`resolve_classes` and :func:`clean_text`.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from purls_pl.data.catalog import class_names
from purls_pl.text.descriptions import (
    DescriptionError,
    DescriptionSet,
    load_descriptions,
    merge_descriptions,
    save_descriptions,
)
from purls_pl.text.fields import FIELDS

#: Header words that identify each column (after lower-casing and splitting on non-letters).
HEADER_WORDS: dict[str, frozenset[str]] = {
    "head": frozenset({"head"}),
    "hands": frozenset({"hand", "hands", "arm", "arms"}),
    "torso": frozenset({"torso", "trunk"}),
    "legs": frozenset({"leg", "legs", "foot", "feet"}),
    "start": frozenset({"start", "begin", "beginning"}),
    "middle": frozenset({"middle", "mid"}),
    "end": frozenset({"end", "ending", "finish"}),
    "global": frozenset({"global", "overall", "whole"}),
}
LABEL_WORDS: frozenset[str] = frozenset({"label", "action", "class", "name", "category"})

_LEAD = re.compile(r"^(?:(?:the|a) person|they|he|she)?\s*would\b\s*:?\s*", re.IGNORECASE)
_WRAP = "\"'`*_ \t\n\r"


def clean_text(text: str) -> str:
    """Normalise one answer: drop "The person would", wrapping quotes/markdown and trailing periods;
    lower-case the first letter (unless it starts an acronym). Returns "" for an unusable answer."""
    text = re.sub(r"^[\s#>•*-]+", "", " ".join(str(text).split())).strip(_WRAP)
    text = _LEAD.sub("", text).strip(_WRAP)
    text = text.rstrip(" .;,").strip(_WRAP).rstrip(" .;,")
    if "{text}" in text or not any(c.isalnum() for c in text):
        return ""
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


def resolve_classes(spec: str) -> tuple[list[str], str]:
    """Class names from a file (one label per line, or a JSON list) or a dataset key (``ntu120``, ...).

    Returns the names and a default set name (the dataset key or the file stem).
    """
    path = Path(spec)
    if path.is_file():
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix.lower() == ".json" or text.lstrip().startswith("["):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: not valid JSON ({err}); give a JSON list or one label per line") from None
            if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
                raise ValueError(f'{path}: expected a JSON list of non-empty label strings, e.g. ["drink water"]')
            names = [x.strip() for x in raw]
        else:
            names = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        lowered = [n.lower() for n in names]
        dupes = sorted({n for n, low in zip(names, lowered) if lowered.count(low) > 1})
        if dupes:
            raise ValueError(f"{path}: labels listed twice: {dupes[:5]}; keep one line per class")
        if not names:
            raise ValueError(f"{path}: no class labels found; write one label per line")
        return names, path.stem
    try:
        return class_names(spec), spec
    except KeyError as err:
        raise ValueError(
            f"--classes {spec!r} is neither an existing file nor a known dataset ({err.args[0]}); "
            "give a text file with one label per line, a JSON list, or a dataset key such as ntu120"
        ) from None


def _header_field(header: str) -> str | None:
    words = set(re.findall(r"[a-z]+", header.lower()))
    hits = [f for f, w in HEADER_WORDS.items() if words & w]
    if len(hits) > 1:
        raise ValueError(f"column {header!r} matches several fields ({', '.join(hits)})")
    if hits:
        return hits[0]
    return "label" if words & LABEL_WORDS else None


def _map_header(row: Sequence[Any]) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for i, cell in enumerate(row):
        if cell is None or not str(cell).strip():
            continue
        target = _header_field(str(cell))
        if target is None:
            continue
        if target in mapping.values():
            raise ValueError(f"two columns map to {target!r} (second: {cell!r})")
        mapping[i] = target
    return mapping


def _read_rows(path: Path, sheet: str | None) -> tuple[list[list[Any]], str | None]:
    suffix = path.suffix.lower()
    if suffix in {".csv", ".tsv", ".txt"}:
        text = path.read_text(encoding="utf-8-sig")
        try:
            dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel_tab if suffix == ".tsv" else csv.excel
        return [list(r) for r in csv.reader(text.splitlines(), dialect)], None
    if suffix not in {".xlsx", ".xlsm"}:
        raise ValueError(f"{path}: unsupported table format {suffix!r}; use .xlsx, .csv or .json")
    try:
        import openpyxl
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"reading {path} needs openpyxl: pip install openpyxl (or `pip install -e .[dev]`), "
            "or save the sheet as .csv"
        ) from None
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        names = list(book.sheetnames)
        if sheet is None:
            if len(names) != 1:
                raise ValueError(f"{path} has sheets {names}; choose one with --sheet")
            chosen = names[0]
        else:
            key = re.sub(r"[^a-z0-9]", "", sheet.lower())
            match = [n for n in names if re.sub(r"[^a-z0-9]", "", n.lower()) == key]
            if not match:
                raise ValueError(f"{path}: no sheet {sheet!r}; available sheets: {names}")
            chosen = match[0]
        return [list(r) for r in book[chosen].iter_rows(values_only=True)], chosen
    finally:
        book.close()


def read_description_json(path: Path, name: str | None = None, allow_missing: bool = False) -> DescriptionSet:
    """A hand-written description JSON: the project's own shape (``{"classes": [{"label", <fields>}]}``), a
    bare list of such records, or a mapping ``{label: {field: text}}``.

    Raises:
        ValueError: naming the file, the entry and the key or field, and the fix.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if isinstance(raw, dict) and isinstance(raw.get("classes"), list):
        records, meta = raw["classes"], raw
    elif isinstance(raw, list):
        records, meta = raw, {}
    elif isinstance(raw, dict) and all(isinstance(v, dict) for v in raw.values()):
        records, meta = [{"label": k, **v} for k, v in raw.items()], {}
    else:
        raise ValueError(
            f'{path}: expected {{"classes": [{{"label": ..., "head": ..., ...}}]}}, a list of such records, '
            'or {"<label>": {"head": ..., ...}}'
        )
    gaps = []
    for i, record in enumerate(records):
        where = f"{path}, classes[{i}]" + (f" ({record.get('label')!r})" if isinstance(record, dict) else "")
        if not isinstance(record, dict) or not str(record.get("label", "")).strip():
            raise ValueError(f"{where}: an entry needs a 'label' and the fields {list(FIELDS)}")
        unknown = sorted(set(record) - {"label", *FIELDS})
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; the fields are {list(FIELDS)} (check the spelling)")
        empty = [f for f in FIELDS if not record.get(f)]
        if empty:
            gaps.append(f"{where}: empty {', '.join(empty)}")
    if gaps and not allow_missing:
        raise ValueError("incomplete entries:\n  " + "\n  ".join(gaps[:10]) + "\nFill them or pass --allow-missing")
    produced_by = meta.get("produced_by") or {
        "method": f"imported from {path.name}",
        "date": _dt.date.today().isoformat(),
    }
    return DescriptionSet.from_records(
        records, name=name or str(meta.get("name") or path.stem), produced_by=produced_by, source=str(path)
    )


def read_description_table(
    path: str | Path, sheet: str | None = None, name: str | None = None, allow_missing: bool = False
) -> DescriptionSet:
    """Read a spreadsheet (``.xlsx``) or ``.csv`` table of descriptions into a :class:`DescriptionSet`.

    The header row (searched in the first 10 rows) needs a label column ("Action Label", "Label",
    "Action", ...) and the field columns (head, hands, torso, legs, start, middle, end, "Global
    Description"); other columns are ignored. Cells are cleaned with :func:`clean_text`.

    Raises:
        ValueError: naming the file, the column or row, and the fix, for an unusable table.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"description table {path} does not exist")
    if path.suffix.lower() == ".json":
        return read_description_json(path, name, allow_missing)
    rows, chosen = _read_rows(path, sheet)
    where = f"{path}" + (f" (sheet {chosen!r})" if chosen else "")
    mapping: dict[int, str] = {}
    header_at, problem = -1, ""
    for r, row in enumerate(rows[:10]):
        try:
            candidate = _map_header(row)
        except ValueError as err:
            problem = problem or f"{where}, row {r + 1}: {err}; rename the column to one of {('label', *FIELDS)}"
            continue
        if "label" in candidate.values() and len(candidate) > len(mapping):
            mapping, header_at = candidate, r
    absent = [f for f in ("label", *FIELDS) if f not in mapping.values()]
    if header_at < 0 and problem:
        raise ValueError(problem)
    if header_at < 0 or absent:
        found = [str(c) for c in rows[header_at] if c] if header_at >= 0 else []
        raise ValueError(
            f"{where}: no header row with columns for {', '.join(absent)} (found {found}); the table needs "
            "a header row 'Action Label, Head, Hands, Torso, Legs, Start, Middle, End, Global Description'"
        )
    records: list[dict[str, str]] = []
    gaps: list[str] = []
    for r, row in enumerate(rows[header_at + 1 :], start=header_at + 2):
        cells = {f: ("" if i >= len(row) or row[i] is None else str(row[i])) for i, f in mapping.items()}
        label = " ".join(cells.pop("label").split())
        if not label:
            if any(v.strip() for v in cells.values()):
                gaps.append(f"row {r}: texts without an action label")
            continue
        texts = {f: clean_text(v) for f, v in cells.items()}
        empty = [f for f in FIELDS if not texts.get(f)]
        if empty:
            gaps.append(f"row {r} ({label!r}): empty {', '.join(empty)}")
        records.append({"label": label, **{f: t for f, t in texts.items() if t}})
    if gaps and not allow_missing:
        more = f" (and {len(gaps) - 10} more)" if len(gaps) > 10 else ""
        raise ValueError(
            f"{where}: incomplete rows:\n  " + "\n  ".join(gaps[:10]) + more + "\nFill the cells, or pass "
            "--allow-missing to import what is there (validate-descriptions then lists the gaps)"
        )
    columns = {str(rows[header_at][i]): f for i, f in mapping.items()}
    produced_by = {
        "method": f"imported from the table {path.name}" + (f", sheet {chosen!r}" if chosen else ""),
        "source_file": path.name,
        "sheet": chosen,
        "columns": columns,
        "date": _dt.date.today().isoformat(),
    }
    return DescriptionSet.from_records(records, name=name or chosen or path.stem, produced_by=produced_by, source=where)


def import_main(argv: Sequence[str] | None = None) -> None:
    """``python -m purls_pl import-descriptions``: spreadsheet/CSV/hand-written JSON -> description set JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m purls_pl import-descriptions",
        description="Convert a description table (.xlsx sheet or .csv with columns action label, head, hands, "
        "torso, legs, start, middle, end, global description) or a hand-written JSON into a description set.",
    )
    parser.add_argument("table", help="the .xlsx workbook, .csv file or hand-written .json")
    parser.add_argument("--sheet", help="sheet of the workbook (case-insensitive; needed when it has several)")
    parser.add_argument("--out", required=True, help="output JSON, e.g. descriptions/ntu120.json")
    parser.add_argument("--name", help="set name stored in the file (default: the sheet name or file stem)")
    parser.add_argument("--dataset", help="also check the result covers this dataset's classes (e.g. ntu120)")
    parser.add_argument("--allow-missing", action="store_true", help="import rows with empty cells instead of failing")
    args = parser.parse_args(argv)
    try:
        result = read_description_table(args.table, args.sheet, args.name, args.allow_missing)
    except (ValueError, FileNotFoundError, ModuleNotFoundError) as err:
        raise SystemExit(f"import-descriptions: {err}") from None
    save_descriptions(result, args.out)
    print(f"wrote {len(result.entries)} classes to {args.out}")
    if args.dataset:
        validate_main([args.out, "--dataset", args.dataset])


def validate_main(argv: Sequence[str] | None = None) -> None:
    """``python -m purls_pl validate-descriptions``: list missing classes/fields (exit 1) or print OK."""
    parser = argparse.ArgumentParser(
        prog="python -m purls_pl validate-descriptions",
        description="Check that a description set has all 8 fields for every class of a dataset or class list.",
    )
    parser.add_argument("file", help="description set JSON, e.g. descriptions/ntu120.json")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--dataset", help="dataset key whose classes must be covered (ntu60, ntu120, kinetics400, ...)")
    group.add_argument("--classes", help="file with one label per line (or a JSON list) that must be covered")
    args = parser.parse_args(argv)
    try:
        descriptions = load_descriptions(args.file)
        names, what = resolve_classes(args.dataset or args.classes) if (args.dataset or args.classes) else ([], "")
    except (ValueError, FileNotFoundError, DescriptionError) as err:
        raise SystemExit(f"validate-descriptions: {err}") from None
    if not names:
        names, what = list(descriptions.entries), "its own entries"
    missing = descriptions.missing(names)
    if missing:
        for label, fields in missing.items():
            print(f"{label!r}: " + ("no entry" if len(fields) == len(FIELDS) else "missing " + ", ".join(fields)))
        print(f"{args.file}: {len(missing)} of {len(names)} classes of {what} are incomplete")
        raise SystemExit(1)
    texts = sum(len(v) for e in descriptions.entries.values() for v in e.values())
    print(
        f"OK {args.file}: {len(names)} classes of {what} have all {len(FIELDS)} fields "
        f"({len(descriptions.entries)} classes, {texts} texts in the file)"
    )


def merge_main(argv: Sequence[str] | None = None) -> None:
    """``python -m purls_pl merge-descriptions``: several sets -> one set with several answers per field."""
    parser = argparse.ArgumentParser(
        prog="python -m purls_pl merge-descriptions",
        description="Join description sets into one whose fields hold the answers of every input in order (their "
        "embeddings are averaged, supplementary Table 2), or keep the first K answers per field of one set.",
    )
    parser.add_argument("files", nargs="+", help="description set JSON files; the first one's answers come first")
    parser.add_argument("--out", required=True, help="output JSON, e.g. descriptions/nw-ucla-multi.json")
    parser.add_argument("--name", help="set name stored in the file (default: the first input's)")
    parser.add_argument("--alternatives", type=int, default=0, help="keep the first K answers per field (0 = all)")
    parser.add_argument("--dataset", help="also check the result covers this dataset's classes (e.g. nw-ucla)")
    args = parser.parse_args(argv)
    try:
        merged = merge_descriptions([load_descriptions(f) for f in args.files], args.name)
        if args.alternatives:
            merged = merged.with_alternatives(args.alternatives)
    except (ValueError, FileNotFoundError, DescriptionError) as err:
        raise SystemExit(f"merge-descriptions: {err}") from None
    save_descriptions(merged, args.out)
    most = max((hi for _, hi in merged.alternatives_per_field().values()), default=0)
    print(f"wrote {len(merged.entries)} classes, up to {most} answers per field, to {args.out}")
    if args.dataset:
        validate_main([args.out, "--dataset", args.dataset])
