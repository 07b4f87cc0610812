"""The marked sections of bench/RESULTS.md that benches rewrite with their latest figures."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(text: str, begin: str, end: str, path: Path = RESULTS) -> None:
    """Replace the part of ``path`` from ``begin`` to ``end`` with ``text`` (which carries both
    markers), or append ``text`` when the file has no such part yet."""
    current = path.read_text()
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        current = head + text.rstrip("\n") + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + text
    path.write_text(current)
