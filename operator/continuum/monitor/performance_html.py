"""The performance section of report.html: metric over the window, intervals, confusion matrix.

Rendered from the report's ``performance`` section alone (as the rest of the page is from the
JSON), inline SVG, no scripts; every text from data is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

WIDTH, HEIGHT, MARGIN = 560, 200, 36
REALISED_COLOUR, ESTIMATED_COLOUR, HOLDOUT_COLOUR = "#4c78a8", "#f58518", "#555"
VERDICT_COLOURS = {"Degraded": "#c0392b", "Held": "#27ae60", "InsufficientData": "#7f8c8d"}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def _badge(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#7f8c8d")
    return f'<span class="badge" style="background:{colour}">{escape(verdict)}</span>'


def _interval(entry: Mapping[str, Any] | None) -> str:
    if not entry or entry.get("value") is None:
        return "-"
    return (
        f"{_fmt(entry['value'])} [{_fmt(entry.get('lower'))}, {_fmt(entry.get('upper'))}] "
        f"over {_fmt(entry.get('rows'))} predictions"
    )


def _rows(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in pairs)


def performance_section(
    section: Mapping[str, Any] | None, fairness: Mapping[str, Any] | None = None
) -> str:
    """The whole section; empty when the check had no spec.performance."""
    if not section:
        return ""
    parts = ["<h2>Performance</h2>", _overview(section)]
    if section.get("error"):
        return "".join(parts)
    parts += [
        _chart(section),
        _confusion(section.get("confusionMatrix")),
        _fairness(section.get("fairness"), fairness),
        _join(section.get("join")),
        _notes(section.get("notes") or []),
    ]
    return "\n".join(part for part in parts if part)


def _overview(section: Mapping[str, Any]) -> str:
    metric = escape(str(section.get("metric") or "-"))
    pairs = [
        ("Verdict", _badge(str(section.get("verdict")))),
        ("Basis", _fmt(section.get("basis"))),
        ("Why", escape(str(section.get("reason") or ""))),
    ]
    if not section.get("error"):
        pairs += [
            (f"Holdout {metric} (served version)", _fmt(section.get("holdout"))),
            (
                "Allowed drop, bound",
                f"{_fmt(section.get('maxDrop'))}, {_fmt(section.get('bound'))}",
            ),
            (f"Realised {metric} (matured, labelled)", _interval(section.get("realised"))),
            (f"Estimated {metric} (newest window)", _interval(section.get("estimated"))),
            (
                "Estimated on the realised window",
                _interval(section.get("estimatedOnRealisedWindow")),
            ),
            ("Confidence", _fmt(section.get("confidence"))),
        ]
    return f"<table>{_rows(pairs)}</table>"


def _chart(section: Mapping[str, Any]) -> str:
    """The metric per stretch of time, realised and estimated, with intervals and the
    holdout and its bound as lines."""
    chunks = section.get("timeline") or []
    values = [
        v
        for chunk in chunks
        for kind in ("realised", "estimated")
        if chunk.get(kind)
        for v in (chunk[kind].get("lower"), chunk[kind].get("upper"))
        if v is not None
    ] + [v for v in (section.get("holdout"), section.get("bound")) if v is not None]
    if not chunks or not values:
        return "<p>No stretch of the window had enough predictions to plot.</p>"
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    pad = (high - low) * 0.05
    scale = _Scale(len(chunks), low - pad, high + pad)
    marks = [_line(scale, section.get("holdout"), HOLDOUT_COLOUR, "holdout"),
             _line(scale, section.get("bound"), HOLDOUT_COLOUR, "bound", dashed=True)]  # fmt: skip
    for i, chunk in enumerate(chunks):
        marks.append(_point(scale, i, chunk.get("realised"), REALISED_COLOUR, -4))
        marks.append(_point(scale, i, chunk.get("estimated"), ESTIMATED_COLOUR, 4))
    legend = (
        f'<p class="legend"><span style="background:{REALISED_COLOUR}"></span>realised'
        f'<span style="background:{ESTIMATED_COLOUR}"></span>estimated (interval bars)</p>'
    )
    first, last = chunks[0].get("start", ""), chunks[-1].get("end", "")
    metric = escape(str(section.get("metric")))
    caption = f"<p>{metric} per stretch of time, {escape(first)} to {escape(last)}</p>"
    svg = (
        f'<svg width="{WIDTH}" height="{HEIGHT}" role="img">{"".join(m for m in marks if m)}</svg>'
    )
    return caption + legend + svg


class _Scale:
    def __init__(self, count: int, low: float, high: float) -> None:
        self.count, self.low, self.high = count, low, high

    def x(self, index: int) -> float:
        return MARGIN + (WIDTH - 2 * MARGIN) * (index + 0.5) / self.count

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low)
        return HEIGHT - MARGIN - share * (HEIGHT - 2 * MARGIN)


def _line(scale: _Scale, value: Any, colour: str, label: str, *, dashed: bool = False) -> str:
    if value is None:
        return ""
    y = scale.y(float(value))
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (
        f'<line x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{y:.1f}" y2="{y:.1f}" '
        f'stroke="{colour}"{dash}/><text x="{WIDTH - MARGIN + 2}" y="{y + 3:.1f}">'
        f"{escape(label)}</text>"
    )


def _point(scale: _Scale, index: int, entry: Mapping[str, Any] | None, colour: str, dx: int) -> str:
    if not entry or entry.get("value") is None:
        return ""
    x = scale.x(index) + dx
    parts = []
    if entry.get("lower") is not None and entry.get("upper") is not None:
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{scale.y(entry["lower"]):.1f}" '
            f'y2="{scale.y(entry["upper"]):.1f}" stroke="{colour}"/>'
        )
    parts.append(
        f'<circle cx="{x:.1f}" cy="{scale.y(entry["value"]):.1f}" r="3" fill="{colour}">'
        f"<title>{_interval(entry)}</title></circle>"
    )
    return "".join(parts)


def _confusion(matrix: Mapping[str, Any] | None) -> str:
    if not matrix:
        return ""
    classes = [escape(str(c)) for c in matrix["classes"]]
    head = "<tr><th>true \\ predicted</th>" + "".join(f"<th>{c}</th>" for c in classes) + "</tr>"
    body = "".join(
        f"<tr><th>{name}</th>" + "".join(f"<td>{int(v)}</td>" for v in row) + "</tr>"
        for name, row in zip(classes, matrix["matrix"], strict=True)
    )
    return f"<h3>Confusion matrix (realised window)</h3><table>{head}{body}</table>"


def _fairness(labelled: Mapping[str, Any] | None, rates: Mapping[str, Any] | None) -> str:
    if not labelled:
        return ""
    pairs = [
        ("Positive-prediction rate gap (no labels)", _fmt((rates or {}).get("gap"))),
        ("Equal opportunity: true-positive-rate gap", _fmt(labelled.get("equalOpportunityGap"))),
        ("False-positive-rate gap", _fmt(labelled.get("falsePositiveRateGap"))),
        ("Equalised odds: the larger gap", _fmt(labelled.get("equalisedOddsGap"))),
        ("Threshold, flagged", f"{_fmt(labelled.get('threshold'))}, "
                               f"{'yes' if labelled.get('flagged') else 'no'}"),
    ]  # fmt: skip
    head = "<tr><th>group</th><th>positives</th><th>negatives</th><th>TPR</th><th>FPR</th></tr>"
    body = "".join(
        f"<tr><td>{escape(str(g['group']))}</td><td>{g['positives']}</td><td>{g['negatives']}</td>"
        f"<td>{_fmt(g['truePositiveRate'])}</td><td>{_fmt(g['falsePositiveRate'])}</td></tr>"
        for g in labelled.get("groups") or []
    )
    feature = escape(str(labelled.get("feature")))
    return (
        f"<h3>Fairness with labels ({feature}, positive class "
        f"{escape(str(labelled.get('positiveClass')))})</h3><table>{_rows(pairs)}</table>"
        f"<table>{head}{body}</table>"
    )


def _join(join: Mapping[str, Any] | None) -> str:
    if not join:
        return ""
    pairs = [(name, _fmt(value)) for name, value in join.items()]
    return f"<h3>Predictions and labels joined</h3><table>{_rows(pairs)}</table>"


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    return "<ul>" + "".join(f"<li>{escape(str(n))}</li>" for n in notes) + "</ul>"
