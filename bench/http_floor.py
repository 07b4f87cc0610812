"""What one HTTP request costs before any model runs (issue 21's per-request target).

    .venv/bin/python bench/http_floor.py [--duration 10] [--connections 16] [--rounds 3]

Issue 21 asks that, at 16 connections, the server's cost per one-row request be at most 2x the
fast path's cost per row at batch 16. The scorer's cost per row at batch 16 is 1.5-28 us
(bench/RESULTS.md, "Floors"), so the target leaves 0-26 us per request for everything that is
not scoring: reading the request, HTTP parsing, JSON, routing, writing the answer.

This bench measures that part alone, on the server's own HTTP stack: uvicorn with httptools,
uvloop and ``continuum.server.http.HttpProtocol`` (one socket write per answer), access log
off, pinned to CPU 0, wrk on CPU 1 at 16 connections (bench/wrk/infer.lua), for an ASGI app
that does no work of its own:

* ``bare``: reads the request body and answers a constant OIP v2 body (no JSON at all);
* ``json``: also parses the request with ``json.loads`` and writes the answer with the
  server's own ``encode_json``, as the server's fast path does.

Reported: requests/s and the server's CPU time per request (user + system of its process,
from /proc), per round and as the median. Results: bench/results/<time>-http-floor.json and
the "HTTP floor" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "operator"), str(ROOT), str(HERE)]

from sections import write_section  # noqa: E402

BEGIN, END = "<!-- BEGIN http-floor -->", "<!-- END http-floor -->"
REQUEST = {
    "id": "floor",
    "inputs": [
        {"name": "tenure", "shape": [1], "datatype": "FP64", "data": [12.5]},
        {"name": "charges", "shape": [1], "datatype": "FP64", "data": [70.25]},
        {"name": "age", "shape": [1], "datatype": "FP64", "data": [41.0]},
        {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["basic"]},
    ],
    "outputs": [{"name": "predict"}],
}
ANSWER = {
    "model_name": "churn",
    "model_version": "1",
    "id": "floor",
    "parameters": {},
    "outputs": [{"name": "predict", "shape": [1], "datatype": "BYTES", "data": ["no"]}],
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the app under test (run in the server process) ---------------------------------------


def make_app(kind: str) -> Any:
    """An ASGI app answering every request as ``kind`` says (module doc)."""
    from continuum.server.endpoints import encode_json  # noqa: PLC0415 (server process only)

    constant = encode_json(ANSWER)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        answer = constant
        if kind == "json":
            request = json.loads(body)
            answer = encode_json(ANSWER | {"id": request.get("id")})
        headers[1] = (b"content-length", str(len(answer)).encode())
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return app


def serve(kind: str, port: int) -> None:
    import uvicorn  # noqa: PLC0415 (server process only)

    from continuum.server.http import HttpProtocol  # noqa: PLC0415 (server process only)

    uvicorn.run(make_app(kind), host="127.0.0.1", port=port, loop="uvloop", http=HttpProtocol,
                access_log=False, log_level="warning", lifespan="off")  # fmt: skip


# --- the driver ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_up(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the {port} server did not start within {timeout} s")


def one_round(kind: str, connections: int, seconds: int, bodies: Path) -> dict[str, Any]:
    port = free_port()
    command = ["taskset", "-c", "0", sys.executable, str(Path(__file__).resolve()),
               "--serve", kind, str(port)]  # fmt: skip
    server = subprocess.Popen(command)
    try:
        wait_up(port)
        before = cpu_seconds(server.pid)
        url = f"http://127.0.0.1:{port}/v2/models/churn/infer"
        wrk = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
               "-s", str(HERE / "wrk" / "infer.lua"), url]  # fmt: skip
        env = os.environ | {"WRK_BODIES": str(bodies)}
        done = subprocess.run(wrk, capture_output=True, text=True, check=True, env=env)
        used = cpu_seconds(server.pid) - before
    finally:
        server.terminate()
        server.wait(10)
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT "))
    result = json.loads(line.removeprefix("WRK_RESULT "))
    errors = sum(result["errors"].values())
    if errors:
        raise RuntimeError(f"wrk saw {errors} errors against the {kind} app: {result}")
    requests = result["requests"]
    return {"requests": requests, "rps": requests / (result["duration_us"] / 1e6),
            "cpuUsPerRequest": used / requests * 1e6, "p50Ms": result["latency_us"]["p50"] / 1e3,
            "p99Ms": result["latency_us"]["p99"] / 1e3}  # fmt: skip


def measure(connections: int, seconds: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="http-floor-") as folder:
        bodies = Path(folder) / "bodies.jsonl"
        bodies.write_text(json.dumps(REQUEST, separators=(",", ":")) + "\n")
        found: dict[str, Any] = {}
        for kind in ("bare", "json"):
            runs = []
            for i in range(rounds):
                runs.append(one_round(kind, connections, seconds, bodies))
                log(f"{kind} round {i + 1}: {runs[-1]['rps']:,.0f} req/s, "
                    f"{runs[-1]['cpuUsPerRequest']:.1f} us CPU a request")  # fmt: skip
            found[kind] = {
                "runs": runs,
                "rps": statistics.median(r["rps"] for r in runs),
                "cpuUsPerRequest": statistics.median(r["cpuUsPerRequest"] for r in runs),
            }
    return found


def section(report: dict[str, Any]) -> str:
    f = report["found"]
    rows = [
        f"| {kind} | {f[kind]['rps']:,.0f} | {f[kind]['cpuUsPerRequest']:.1f} |"
        for kind in ("bare", "json")
    ]
    return "\n".join([
        BEGIN,
        "## HTTP floor (bench/http_floor.py)",
        "",
        f"`.venv/bin/python bench/http_floor.py --connections {report['connections']} "
        f"--duration {report['seconds']} --rounds {report['rounds']}` ({report['measured']}, "
        f"1-minute load average {report['load']:.2f} at the start). The server's own HTTP stack "
        "(uvicorn, httptools, uvloop, `continuum.server.http.HttpProtocol`) on CPU 0 with an app "
        "that does no work, wrk on CPU 1; medians of the rounds.",
        "",
        "| app | requests/s | server CPU per request (us) |",
        "|---|---:|---:|",
        *rows,
        "",
        "Issue 21's per-request target leaves 2x the scorer's per-row cost at batch 16 for "
        "the whole request. With the scorer floors of the Model server section (2026-12-04 "
        "run), against what a request costs here before any model and with the scoring of "
        "its one row at that floor:",
        "",
        "| pipeline | scorer per row at batch 16 (us) | budget per request (us) | "
        "no model: bare / json (us) | json + one row's scoring (us) | within the budget |",
        "|---|---:|---:|---:|---:|---|",
        *budget_rows(f),
        "",
        f"- raw figures: `{report['file']}` (not committed).",
        END,
    ]) + "\n"  # fmt: skip


FLOORS_US = {"default": 1.5, "demo": 3.2, "hgb": 4.3, "forest-cat": 27.8}  # RESULTS.md, 12-04


def budget_rows(found: dict[str, Any]) -> list[str]:
    bare, parsed = found["bare"]["cpuUsPerRequest"], found["json"]["cpuUsPerRequest"]
    rows = []
    for name, floor in FLOORS_US.items():
        budget, least = 2 * floor, parsed + floor
        rows.append(f"| {name} | {floor} | {budget:.1f} | {bare:.1f} / {parsed:.1f} | "
                    f"{least:.1f} | {'yes' if least <= budget else 'no'} |")  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve[0], int(args.serve[1]))
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        sys.exit("missing wrk or taskset: apt-get install -y wrk (taskset is in util-linux)")
    load = os.getloadavg()[0]
    found = measure(args.connections, args.duration, args.rounds)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out = HERE / "results" / f"{stamp}-http-floor.json"
    report = {"measured": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "load": load,
              "connections": args.connections, "seconds": args.duration, "rounds": args.rounds,
              "found": found, "file": str(out.relative_to(ROOT))}  # fmt: skip
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    write_section(section(report), BEGIN, END)
    print(section(report))


if __name__ == "__main__":
    main()
