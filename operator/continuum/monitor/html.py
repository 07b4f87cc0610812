"""report.html: the report as one self-contained page (inline CSS and SVG, no scripts).

Rendered from the report JSON alone, so the page and the JSON can never disagree. Nothing is
fetched: no fonts, no scripts, no images by URL; a browser with no network shows it all.
Every piece of text that comes from data (feature and category names, notes) is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from continuum.monitor.performance_html import performance_section

CHART_WIDTH = 520
CHART_HEIGHT = 180
MARGIN = 28
LABEL_CHARS = 14
REFERENCE_COLOUR = "#4c78a8"
CURRENT_COLOUR = "#f58518"

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}h3{font-size:1rem;margin:0 0 .5rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:.8rem;font-weight:600;color:#fff}
.Drift,.yes,.Failed{background:#c0392b}.NoDrift,.no,.Passed{background:#27ae60}.InsufficientData{background:#7f8c8d}
.feature{border:1px solid #ddd;border-radius:.4rem;padding:1rem;margin:1rem 0}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}
.reason{color:#555}svg text{font-size:10px;fill:#444}
"""


def render_html(report: Mapping[str, Any]) -> str:
    title = f"Drift report: {report['monitor']} ({report['model']} v{report['version']})"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        _overview(report),
        _quality(report.get("quality")),
        _feature_table(report["features"]),
        _fairness(report.get("fairness")),
        performance_section(report.get("performance"), report.get("fairness")),
        *(_feature_section(feature) for feature in report["features"]),
        _notes(report.get("notes", [])),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part)


def fmt(value: Any) -> str:
    """Numbers for people: 4 significant digits, tiny p-values in e-notation, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3e}" if value and abs(value) < 1e-3 else f"{value:.4g}"
    return escape(str(value))


def _badge(verdict: str) -> str:
    return f'<span class="badge {escape(verdict)}">{escape(verdict)}</span>'


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in pairs)


def _overview(report: Mapping[str, Any]) -> str:
    window, tests = report["window"], report["settings"]["tests"]
    pairs = [
        ("Verdict", _badge(report["verdict"])),
        ("Drifted features", f"{report['driftedFeatures']} of {report['testedFeatures']}"),
        ("Share (threshold)", f"{fmt(report['share'])} ({fmt(tests['driftShare'])})"),
        ("Current window", escape(window["description"]) + _window_note(window)),
        (
            "Reference sample",
            f"{report['reference']['rows']} rows, {escape(report['reference']['uri'])}",
        ),
        ("Tests", escape(_tests_text(tests))),
        ("Checked at", escape(report["createdAt"])),
        ("Report", escape(report["reportURI"])),
    ]
    return f"<table>{_rows(pairs)}</table>"


def _window_note(window: Mapping[str, Any]) -> str:
    if window.get("strategy") == "time":
        undated = window.get("undatedRows") or 0
        dropped = f"; {undated} rows without a readable time left out" if undated else ""
        return escape(
            f"; {window['batchesRead']} of {window['batchesTotal']} batches read{dropped}"
        )
    kept = "older rows left out" if window["truncated"] else "every logged row"
    return escape(
        f"; not sampled, {kept}; {window['batchesRead']} of {window['batchesTotal']} batches"
    )


def _tests_text(tests: Mapping[str, Any]) -> str:
    return (
        f"KS (numeric) / chi-square (categorical) at p < {tests['pValue']} after "
        f"{tests['correction']} correction; drift also needs effect size >= "
        f"{tests['ksEffectThreshold']} or PSI >= {tests['psiThreshold']}"
    )


FEATURE_COLUMNS = ("Feature", "Kind", "Test", "Statistic", "p (corrected)", "Effect size",
                   "PSI", "Wasserstein / spread", "Drifted", "Quality")  # fmt: skip


def _quality(quality: Mapping[str, Any] | None) -> str:
    """The data-quality verdict and every failed check, each naming feature and figure."""
    if not quality:
        return ""
    passed = quality.get("passed")
    if passed is None:
        return f"<h2>Data quality</h2><p>Not checked: {escape(str(quality.get('skipped')))}</p>"
    verdict = _badge("Passed" if passed else "Failed")
    items = "".join(f"<li>{escape(line)}</li>" for line in quality.get("failures") or [])
    extra = quality.get("extraColumns") or {}
    note = f"<p>{escape(_extra_text(extra))}</p>" if extra else ""
    return f"<h2>Data quality {verdict}</h2>" + (f"<ul>{items}</ul>" if items else "") + note


def _extra_text(extra: Mapping[str, Any]) -> str:
    names = ", ".join(f"{name} ({rows} rows)" for name, rows in sorted(extra.items())[:20])
    return f"Logged columns not in the training schema: {names}"


def _quality_cell(feature: Mapping[str, Any]) -> str:
    failed = (feature.get("quality") or {}).get("failed")
    if failed is None and feature.get("quality") is None:
        return "-"
    return escape(", ".join(failed)) if failed else "ok"


def _feature_table(features: Sequence[Mapping[str, Any]]) -> str:
    if not features:
        return ""
    head = "".join(f"<th>{escape(c)}</th>" for c in FEATURE_COLUMNS)
    return f"<h2>Features</h2><table><tr>{head}</tr>{''.join(map(_feature_row, features))}</table>"


def _feature_row(feature: Mapping[str, Any]) -> str:
    cells = [
        escape(feature["name"]), escape(feature["kind"]), escape(feature["test"]),
        fmt(feature["statistic"]), _p_value(feature), fmt(feature["effectSize"]),
        fmt(feature["psi"]), fmt(feature["wassersteinNormalized"]), _drift_cell(feature["drifted"]),
        _quality_cell(feature),
    ]  # fmt: skip
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _p_value(feature: Mapping[str, Any]) -> str:
    """The corrected p-value; an underflowed one is a bound and is shown as one."""
    bound = "&le; " if feature.get("pValueUnderflow") else ""
    method = f" ({escape(feature['method'])})" if feature.get("method") else ""
    return f"{bound}{fmt(feature['pValue'])}{method}"


def _drift_cell(drifted: bool) -> str:
    word = "yes" if drifted else "no"
    return f'<span class="badge {word}">{word}</span>'


def _fairness(fairness: Mapping[str, Any] | None) -> str:
    if not fairness:
        return ""
    flag = "gap above threshold" if fairness["flagged"] else "within threshold"
    head = (
        f"<h2>Fairness: {escape(fairness['feature'])}</h2><p>Positive class "
        f"{escape(str(fairness['positiveClass']))}; largest gap in positive-prediction rate "
        f"{fmt(fairness['gap'])} (threshold {fmt(fairness['threshold'])}): {flag}. Groups with "
        f"fewer than {fairness['minGroupRows']} rows are not counted.</p>"
    )
    rows = "".join(
        f"<tr><td>{escape(g['group'])}</td><td>{g['rows']}</td><td>{fmt(g['positiveRate'])}</td>"
        f"<td>{fmt(g['counted'])}</td></tr>"
        for g in fairness["groups"]
    )
    header = "<tr><th>Group</th><th>Rows</th><th>Positive rate</th><th>Counted</th></tr>"
    return f"{head}<table>{header}{rows}</table>"


def _feature_section(feature: Mapping[str, Any]) -> str:
    counts = feature["counts"]
    return (
        f'<div class="feature"><h3>{escape(feature["name"])} {_drift_cell(feature["drifted"])}</h3>'
        f'<p class="reason">{escape(feature["reason"])}; {counts["reference"]} reference and '
        f"{counts['current']} current values.</p>{_details(feature)}{_legend()}"
        f"{svg_chart(feature.get('plot'))}</div>"
    )


def _details(feature: Mapping[str, Any]) -> str:
    """The missing-share test and the category grouping, where the feature has them."""
    lines = []
    missing = feature.get("missingShare")
    if missing:
        lines.append(
            f"Missing share {fmt(missing['reference'])} reference, {fmt(missing['current'])} "
            f"current: {escape(missing['test'])}, p (corrected) {fmt(missing['pValue'])}"
            f"{', drift' if missing['drifted'] else ''}."
        )
    grouping = feature.get("grouping")
    if grouping and grouping.get("pooledCategories"):
        lines.append(
            f"{grouping['pooledCategories']} categories pooled into (other) "
            f"({grouping['pooledValues']['reference']} reference and "
            f"{grouping['pooledValues']['current']} current values): "
            f"{escape(grouping['rule'])}."
        )
    lines += [f"Warning while measuring: {escape(w)}" for w in feature.get("warnings") or []]
    return "".join(f'<p class="reason">{line}</p>' for line in lines)


def _legend() -> str:
    return (
        f'<p class="legend"><span style="background:{REFERENCE_COLOUR}"></span>reference'
        f'<span style="background:{CURRENT_COLOUR}"></span>current</p>'
    )


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    return "<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>"


def svg_chart(plot: Mapping[str, Any] | None) -> str:
    """Reference and current shares side by side per bin or category, as an inline SVG."""
    if not plot:
        return "<p>No values to plot.</p>"
    labels = _bin_labels(plot)
    reference, current = plot["reference"], plot["current"]
    top = max([*reference, *current, 1e-9])
    slot = (CHART_WIDTH - 2 * MARGIN) / max(len(labels), 1)
    bars = [
        _bar_pair(i, slot, top, label=label, ref=reference[i], cur=current[i])
        for i, label in enumerate(labels)
    ]
    return (
        # No xmlns: inline SVG in HTML needs none, and the page references no URL at all.
        f'<svg width="{CHART_WIDTH}" '
        f'height="{CHART_HEIGHT + MARGIN}" role="img">{_axis(top)}{"".join(bars)}'
        f"{_axis_labels(plot, labels, slot)}</svg>"
    )


def _bin_labels(plot: Mapping[str, Any]) -> list[str]:
    if plot["kind"] == "bars":
        return [str(c) for c in plot["categories"]]
    edges = plot["edges"]
    return [f"{fmt(edges[i])} to {fmt(edges[i + 1])}" for i in range(len(edges) - 1)]


def _axis(top: float) -> str:
    base = CHART_HEIGHT
    return (
        f'<line x1="{MARGIN}" y1="{base}" x2="{CHART_WIDTH - MARGIN}" y2="{base}" stroke="#999"/>'
        f'<text x="2" y="12">{fmt(top)}</text><text x="2" y="{base}">0</text>'
    )


def _bar_pair(index: int, slot: float, top: float, *, label: str, ref: float, cur: float) -> str:
    width = slot * 0.4
    left = MARGIN + index * slot + slot * 0.1
    height = CHART_HEIGHT - 16  # room above the tallest bar for the scale label
    reference = _bar(
        left, width, height * ref / top, REFERENCE_COLOUR, f"{label}: reference {fmt(ref)}"
    )
    current = _bar(
        left + width, width, height * cur / top, CURRENT_COLOUR, f"{label}: current {fmt(cur)}"
    )
    return reference + current


def _bar(left: float, width: float, height: float, colour: str, tip: str) -> str:
    return (
        f'<rect x="{left:.1f}" y="{CHART_HEIGHT - height:.1f}" width="{width:.1f}" '
        f'height="{height:.1f}" fill="{colour}"><title>{escape(tip)}</title></rect>'
    )


def _axis_labels(plot: Mapping[str, Any], labels: Sequence[str], slot: float) -> str:
    y = CHART_HEIGHT + 14
    if plot["kind"] == "histogram":  # the range's two ends say enough; bars carry tooltips
        edges = plot["edges"]
        return (
            f'<text x="{MARGIN}" y="{y}">{fmt(edges[0])}</text>'
            f'<text x="{CHART_WIDTH - MARGIN}" y="{y}" text-anchor="end">{fmt(edges[-1])}</text>'
        )
    return "".join(
        f'<text x="{MARGIN + (i + 0.5) * slot:.1f}" y="{y}" text-anchor="middle">'
        f"{escape(_short(label))}</text>"
        for i, label in enumerate(labels)
    )


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
