"""Text diagnostics: ``python -m purls_pl text-report``.

How separable a dataset's classes are in each description field, under one text tower::

    python -m purls_pl text-report --descriptions auto --dataset nw-ucla --split nw-ucla_5_5 \\
        --text-model minilm --out reports/nw-ucla

writes ``text_report.json``, ``text_report.md``, ``separability.png`` and one ``similarity_<field>.png``
per field into ``--out`` (measures: :mod:`purls_pl.text.analysis`). Several ``--descriptions`` and/or
``--text-model`` values compare them: each combination goes to ``<out>/<descriptions>_<model>/`` and
``comparison.md`` / ``comparison.json`` / ``comparison_<group>.png`` sit in ``--out``.
For a dataset of your own, ``--dataset`` takes a file of class labels (one per line) and ``--unseen
"a,b,c"`` names its unseen classes.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from purls_pl.apps.text_figures import GROUPS, comparison_figure, separability_figure, similarity_figure
from purls_pl.data.splits import get_split
from purls_pl.eval.figures import save_figure
from purls_pl.storage import atomic_write_json, atomic_write_text
from purls_pl.text.analysis import CLOSE, DUPLICATE, analyse_text, cosine_matrix
from purls_pl.text.descriptions import resolve_descriptions
from purls_pl.text.encoder import TextEncoder
from purls_pl.text.fields import FIELDS
from purls_pl.text.levers import TextOptions, embed_class_text, label_embeddings
from purls_pl.text.llm.importers import resolve_classes
from purls_pl.text.templates import TEMPLATE_PRESETS

REPORT_JSON = "text_report.json"
REPORT_MD = "text_report.md"


def default_templates(descriptions: str) -> str:
    """``label`` for label-only text (as the label-only baseline runs it), ``paper`` otherwise."""
    return "label" if descriptions == "labels" else "paper"


def build_report(
    descriptions: str,
    dataset: str,
    text_model: str = "minilm",
    templates: str = "auto",
    split: str | None = None,
    options: TextOptions | None = None,
    close: float = CLOSE,
    duplicate: float = DUPLICATE,
    top: int = 5,
    unseen_names: Sequence[str] | None = None,
) -> tuple[dict[str, Any], Any]:
    """Embed a description set as a run would and analyse it.

    Args:
        descriptions: A JSON file, ``auto`` (the dataset's shipped set) or ``labels``.
        dataset: Dataset key (its catalogued class list), or a file with one label per line (or a JSON
            list) for a dataset of your own.
        text_model: Text tower (``minilm``, ``use-m3``, ``static64``, a HuggingFace id or directory).
        templates: Template preset, or ``auto`` (:func:`default_templates`).
        split: Zero-shot split of ``dataset`` (adds the unseen-class groups).
        options: Text levers (label mix, alternatives kept).
        close: Similarity of a close pair.
        duplicate: Similarity of a near duplicate.
        top: Confusable pairs listed.
        unseen_names: The unseen classes by name (instead of ``split``, e.g. for a custom dataset).

    Returns:
        The report (plain data) and the ``(K, 8, m)`` embeddings.
    """
    names, _ = resolve_classes(dataset)
    unseen: list[int] = []
    if split is not None and unseen_names:
        raise ValueError("give the unseen classes either as --split or as --unseen, not both")
    if split is not None:
        zsl = get_split(split)
        if zsl.dataset != dataset:
            raise ValueError(f"split {split!r} is a split of {zsl.dataset!r}, not of --dataset {dataset!r}")
        unseen = list(zsl.unseen)
    if unseen_names:
        unknown = [n for n in unseen_names if n not in names]
        if unknown:
            raise ValueError(f"--unseen names {unknown} are not classes of {dataset!r}; its classes: {names}")
        unseen = sorted(names.index(n) for n in unseen_names)
    options = options or TextOptions()
    templates = default_templates(descriptions) if templates == "auto" else templates
    encoder = TextEncoder(text_model)
    described = resolve_descriptions(descriptions, dataset, names)
    embeddings = embed_class_text(encoder, described, names, templates, options)
    kept = described.with_alternatives(options.alternatives) if options.alternatives else described
    texts = kept.texts_for(names)
    report = analyse_text(
        embeddings, names, FIELDS, texts, label_embeddings(encoder, names), unseen, close, duplicate, top
    )
    report["setup"] = {
        "descriptions": descriptions,
        "description_set": described.name,
        "dataset": dataset,
        "split": split,
        "text_model": text_model,
        "text_identity": encoder.identity,
        "dim": int(embeddings.shape[-1]),
        "templates": templates,
        "options": options.record(),
        "alternatives_per_field": {f: list(v) for f, v in kept.alternatives_per_field().items()},
    }
    report["texts"] = {name: {f: list(t[f]) for f in FIELDS} for name, t in zip(names, texts)}
    return report, embeddings


def _num(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _stats_table(report: Mapping[str, Any], group: str) -> list[str]:
    lines = [
        "| field | mean sim | max sim | mean margin | min margin | relative margin | close pairs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for f in report["fields"]:
        s = report["per_field"][f][group]
        close = f"{100 * s['close_pair_fraction']:.0f}%" if not math.isnan(s["close_pair_fraction"]) else "–"
        lines.append(
            f"| {f} | {_num(s['mean_similarity'])} | {_num(s['max_similarity'])} | {_num(s['mean_margin'])} | "
            f"{_num(s['min_margin'])} | {_num(s['relative_margin'])} | {close} |"
        )
    return lines


def summary_pairs(report: Mapping[str, Any], fields: Sequence[str], group: str) -> list[str]:
    """The three most similar class pairs of ``group`` over ``fields``, one line each."""
    key = "confusable_unseen" if group == "unseen" else "confusable"
    pairs = [(p["similarity"], f, p) for f in fields for p in report["per_field"][f][key][:1]]
    word = " unseen" if group == "unseen" else ""
    return [
        f"- Most confusable{word} pair in {f}: {p['a']} ~ {p['b']} ({s:.3f})."
        for s, f, p in sorted(pairs, key=lambda t: -t[0])[:3]
    ]


def summary(report: Mapping[str, Any]) -> list[str]:
    """Plain-language findings: fields ranked by separability, duplicates, the most confusable pairs."""
    per_field, fields = report["per_field"], report["fields"]
    group = "unseen" if report["unseen"] else "all"
    ranked = sorted(fields, key=lambda f: per_field[f][group]["relative_margin"])
    spread = [per_field[f][group]["relative_margin"] for f in fields]
    if max(spread) - min(spread) < 1e-9:
        same = f"- Every field has the same separability ({GROUPS[group]}, relative margin {spread[0]:.3f})."
        return [same, *summary_pairs(report, fields[-1:], group)]
    lines = [
        f"- Least separable fields ({GROUPS[group]}, relative margin): "
        + ", ".join(f"{f} {per_field[f][group]['relative_margin']:.3f}" for f in ranked[:3])
        + f"; most separable: {ranked[-1]} {per_field[ranked[-1]][group]['relative_margin']:.3f}."
    ]
    dups = [(f, per_field[f]["duplicates"]) for f in fields if per_field[f].get("duplicates", {}).get("near")]
    if dups:
        lines.append(
            "- Near-duplicate texts: "
            + "; ".join(f"{f}: {d['near']} classes ({d['identical']} identical)" for f, d in dups)
            + "."
        )
    lines += summary_pairs(report, fields, group)
    if "label" in per_field[fields[0]]:
        weakest = min(fields, key=lambda f: per_field[f]["label"]["gap"])
        lab = per_field[weakest]["label"]
        lines.append(
            f"- Field keeping the least label information: {weakest} (own-label gap {lab['gap']:.3f}, "
            f"label retrieval top-1 {lab['top1']:.0%})."
        )
    return lines


def markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown (setup, summary, per-field tables, duplicates, confusable pairs)."""
    setup, per_field, fields = report["setup"], report["per_field"], report["fields"]
    texts = report.get("texts", {})
    lines = [
        f"# Text report: {setup['descriptions']} x {setup['text_model']}",
        "",
        f"Dataset {setup['dataset']} ({len(report['classes'])} classes), split {setup['split'] or '–'}, "
        f"templates `{setup['templates']}`, m = {setup['dim']}, levers {setup['options']}; thresholds: close pair "
        f"s >= {report['thresholds']['close']}, near duplicate s >= {report['thresholds']['duplicate']}.",
    ]
    if report["unseen"]:
        lines.append(f"Unseen classes: {', '.join(report['unseen'])}.")
    lines += [
        "",
        "## Summary",
        "",
        *summary(report),
        "",
        "## Separability, all classes",
        "",
        *_stats_table(report, "all"),
    ]
    if report["unseen"]:
        lines += ["", "## Unseen classes among themselves", "", *_stats_table(report, "unseen")]
        lines += ["", "## Unseen vs seen classes", "", *_stats_table(report, "unseen_vs_seen")]
    if "label" in per_field[fields[0]]:
        head = "| field | own-label sim | other-label sim | gap | top-1 (all) |" + (
            " top-1 (unseen) |" if report["unseen"] else ""
        )
        lines += [
            "",
            "## Label information kept",
            "",
            head,
            "|---|---:|---:|---:|---:|" + ("---:|" if report["unseen"] else ""),
        ]
        for f in fields:
            lab = per_field[f]["label"]
            row = f"| {f} | {_num(lab['own'])} | {_num(lab['other'])} | {_num(lab['gap'])} | {lab['top1']:.0%} |"
            lines.append(row + (f" {per_field[f]['label_unseen']['top1']:.0%} |" if report["unseen"] else ""))
        misses = [(f, m) for f in fields for m in per_field[f]["label_misses"]]
        if misses:
            lines += ["", "Classes whose field text is closer to another label than to their own:", ""]
            lines += [
                f"- {f}: {m['class']} -> {m['nearest_label']} ({m['similarity']:.3f} vs own {m['own_similarity']:.3f})"
                for f, m in misses
            ]
    if "duplicates" in per_field[fields[0]]:
        lines += ["", "## Near-duplicate texts", "", "| field | identical | near | groups |", "|---|---:|---:|---|"]
        for f in fields:
            d = per_field[f]["duplicates"]
            groups = "; ".join(" = ".join(g) for g in d["groups"][:3]) or "–"
            lines.append(f"| {f} | {d['identical']} | {d['near']} | {groups} |")
    key = "confusable_unseen" if report["unseen"] else "confusable"
    lines += ["", f"## Most confusable {'unseen ' if report['unseen'] else ''}pairs per field", ""]
    for f in fields:
        lines.append(f"**{f}**")
        for p in per_field[f][key]:
            a, b = texts.get(p["a"], {}).get(f, [""]), texts.get(p["b"], {}).get(f, [""])
            lines.append(f'- {p["similarity"]:.3f} {p["a"]} ~ {p["b"]}: "{a[0]}" / "{b[0]}"')
        lines.append("")
    if report["unseen"]:
        lines += ["## Nearest class of each unseen class", "", "| unseen | " + " | ".join(fields) + " |"]
        lines.append("|---|" + "---|" * len(fields))
        for name in report["unseen"]:
            cells = [
                f"{per_field[f]['nearest'][name]['class']} ({per_field[f]['nearest'][name]['similarity']:.2f})"
                for f in fields
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: Mapping[str, Any], embeddings: Any, out: str | Path, figures: bool = True) -> Path:
    """Write ``text_report.json``, ``text_report.md`` and (with ``figures``) the PNGs into ``out``.

    Args:
        report: From :func:`build_report`.
        embeddings: ``(K, 8, m)`` class text (for the heatmaps).
        out: Output folder (created).
        figures: Draw the figures (needs matplotlib).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / REPORT_JSON, report)
    atomic_write_text(out / REPORT_MD, markdown(report))
    if figures:
        for i, f in enumerate(report["fields"]):
            sim = cosine_matrix(embeddings[:, i]).numpy()
            save_figure(similarity_figure(sim, report["classes"], f, report["unseen"]), out / f"similarity_{f}.png")
        setup = report["setup"]
        title = f"{setup['descriptions']} x {setup['text_model']} ({setup['dataset']})"
        save_figure(separability_figure(report, title), out / "separability.png")
    return out


def comparison_markdown(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """Relative margin per field (each group) and label retrieval per field, one row per report."""
    first = next(iter(reports.values()))
    fields = first["fields"]
    groups = [g for g in GROUPS if g in first["per_field"][fields[0]]]
    lines = [
        "# Text report comparison",
        "",
        "Relative margin (nearest / mean cosine distance; higher = more separable).",
    ]
    for group in groups:
        lines += [
            "",
            f"## {GROUPS[group]}",
            "",
            "| run | m | " + " | ".join(fields) + " |",
            "|---|---:|" + "---:|" * len(fields),
        ]
        for name, r in reports.items():
            values = " | ".join(_num(r["per_field"][f][group]["relative_margin"]) for f in fields)
            lines.append(f"| {name} | {r['setup']['dim']} | {values} |")
    lines += [
        "",
        "## Label retrieval top-1 (all classes)",
        "",
        "| run | " + " | ".join(fields) + " |",
        "|---|" + "---:|" * len(fields),
    ]
    for name, r in reports.items():
        lines.append(f"| {name} | " + " | ".join(f"{r['per_field'][f]['label']['top1']:.0%}" for f in fields) + " |")
    return "\n".join(lines) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", Path(text).stem if text.endswith(".json") else Path(text).name).strip("-")


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """``python -m purls_pl text-report``; returns the reports by run name."""
    parser = argparse.ArgumentParser(prog="python -m purls_pl text-report", description=__doc__.splitlines()[0])
    parser.add_argument("--descriptions", nargs="+", default=["auto"], help="description file(s), auto or labels")
    parser.add_argument("--dataset", required=True, help="dataset key (nw-ucla, ...) or a file of class labels")
    parser.add_argument("--split", help="zero-shot split, e.g. nw-ucla_5_5 (adds the unseen-class analysis)")
    parser.add_argument("--unseen", help="unseen class names, comma-separated (instead of --split)")
    parser.add_argument(
        "--text-model", nargs="+", default=["minilm"], help="tower(s): minilm, use-m3, static64, a path"
    )
    parser.add_argument(
        "--templates", default="auto", choices=["auto", *TEMPLATE_PRESETS], help="auto: label for labels, else paper"
    )
    parser.add_argument("--label-mix", type=float, default=0.0, help="w: global = normalize((1-w) F + w L)")
    parser.add_argument("--label-mix-fields", nargs="+", default=["global"], help="fields the label is mixed into")
    parser.add_argument("--alternatives", type=int, default=0, help="answers kept per field (0 = all)")
    parser.add_argument("--close", type=float, default=CLOSE, help="similarity of a close pair (default %(default)s)")
    parser.add_argument("--duplicate", type=float, default=DUPLICATE, help="near-duplicate similarity (%(default)s)")
    parser.add_argument("--top", type=int, default=5, help="confusable pairs listed per field")
    parser.add_argument("--out", default="text_report", help="output folder (default: %(default)s)")
    parser.add_argument("--no-figures", action="store_true", help="write only the JSON and Markdown")
    args = parser.parse_args(argv)
    options = TextOptions(args.label_mix, tuple(args.label_mix_fields), args.alternatives)
    runs = [(d, m) for d in args.descriptions for m in args.text_model]
    reports: dict[str, dict[str, Any]] = {}
    for descriptions, model in runs:
        report, embeddings = build_report(
            descriptions,
            args.dataset,
            model,
            args.templates,
            args.split,
            options,
            args.close,
            args.duplicate,
            args.top,
            [n.strip() for n in args.unseen.split(",") if n.strip()] if args.unseen else None,
        )
        name = f"{_slug(descriptions)}_{_slug(model)}"
        out = Path(args.out) if len(runs) == 1 else Path(args.out) / name
        write_report(report, embeddings, out, figures=not args.no_figures)
        reports[name] = report
        print(f"{name}: {out / REPORT_MD}")
        print("\n".join(summary(report)))
    if len(runs) > 1:
        out = Path(args.out)
        atomic_write_text(out / "comparison.md", comparison_markdown(reports))
        atomic_write_json(
            out / "comparison.json", {n: {"setup": r["setup"], "per_field": r["per_field"]} for n, r in reports.items()}
        )
        if not args.no_figures:
            for group in (g for g in GROUPS if g in next(iter(reports.values()))["per_field"]["global"]):
                save_figure(comparison_figure(reports, group), out / f"comparison_{group}.png")
        print(f"comparison: {out / 'comparison.md'}")
    return reports
