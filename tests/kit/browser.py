"""A real headless Chromium (Debian's ``chromium``), for checking HTML the project renders.

``render(html_file)`` loads a local file once and returns what the page did: its screenshot
(decoded to RGB rows), every console message (uncaught errors included) and every request the
*page* made beyond ``file:``/``data:`` (from Chromium's own network log, told apart from the
browser's background requests by the page's network isolation key). Nothing can leave the
machine: every host name resolves to nothing and every connection goes to a dead local port.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "chromium"
WINDOW = (1200, 4000)
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--no-default-browser-check", "--disable-extensions", "--disable-sync",
    "--disable-background-networking", "--disable-component-update",
    "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
    "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
]  # fmt: skip


@dataclass(frozen=True)
class Rendered:
    screenshot: Path
    pixels: list[bytes]  # RGB rows
    console: list[str]
    fetched: list[str]

    def count(self, colour: str) -> int:
        """Pixels of exactly ``colour`` (#rrggbb)."""
        rgb = bytes.fromhex(colour.lstrip("#"))
        return sum(1 for row in self.pixels for i in range(0, len(row), 3) if row[i : i + 3] == rgb)


def chromium() -> str:
    found = shutil.which(CHROMIUM)
    if found is None:
        raise AssertionError(
            "chromium is not installed: `make browser` (apt-get install chromium) installs it"
        )
    return found


def render(page: Path, out: Path) -> Rendered:
    out.mkdir(parents=True, exist_ok=True)
    shot, netlog = out / "screenshot.png", out / "netlog.json"
    args = [
        chromium(), *FLAGS, f"--user-data-dir={out / 'profile'}", f"--log-net-log={netlog}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}", page.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert shot.is_file(), f"chromium made no screenshot (exit {done.returncode}): {done.stderr}"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Rendered(shot, decode_png(shot.read_bytes()), console, page_requests(netlog))


def page_requests(netlog: Path) -> list[str]:
    """URLs the page asked for over the network (not the browser's own update checks)."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] != start or "url" not in params:
            continue
        if "file://" in str(params.get("network_isolation_key", "")):
            urls.append(str(params["url"]))
    return [url for url in urls if not url.startswith(("file:", "data:"))]


def decode_png(data: bytes) -> list[bytes]:
    """RGB rows of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        chunks += [body] if kind == b"IDAT" else []
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8, header
    assert colour_type in (2, 6), header
    assert interlace == 0, header
    channels = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        current = _unfilter(line[0], bytearray(line[1:]), previous, channels)
        rows.append(bytes(current) if channels == 3 else _rgb(current))
        previous = current
    return rows


def _unfilter(kind: int, line: bytearray, up: bytearray, bpp: int) -> bytearray:
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        above, corner = up[i], up[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + above) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + above) // 2) & 0xFF
        elif kind == 4:
            line[i] = (line[i] + _paeth(left, above, corner)) & 0xFF
    return line


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _rgb(rgba: bytearray) -> bytes:
    return bytes(b for i, b in enumerate(rgba) if i % 4 != 3)
