"""What a candidate beside the champion costs the model server (issue 18).

    .venv/bin/python bench/rollout_shadow.py [--duration 10] [--rounds 3] [--model demo]

Publishes one pipeline of bench/server_vs_mlserver.py (default: the demo's, imputed and scaled
numbers plus a one-hot ``plan``, LogisticRegression) twice with the project's trainer, to a
bucket of its own in the local MinIO (deleted at the end): version 1 the champion, version 2
the candidate. Then serves version 1 with ``continuum serve`` as deployed (batching on,
inference log off), pinned to CPU 0, wrk on CPU 1, one row per OIP v2 request, at c16:

  alone     no candidate (the server as before issue 18);
  shadow    candidate 2 in shadow (CONTINUUM_CANDIDATE_WEIGHT=0): every request also scored
            by the candidate, after the answer, and the answers compared;
  canary50  candidate 2 answering half of the requests (the other version scores a copy).

The configurations alternate (alone, shadow, canary50, alone, ...) for ``--rounds`` rounds of
``--duration`` seconds each; the median of each is reported, and the ratios shadow/alone are
held to the issue's targets: throughput >= 0.7x, p99 <= 1.5x. Results go to
bench/results/<timestamp>-rollout.json and are printed as a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server_vs_mlserver import (
    HOST,
    MODELS,
    PORTS,
    REPO,
    TABLES,
    _spawn,
    bench_bucket,
    check_answers,
    group_cpu_ns,
    request_body,
    require_tools,
    run_wrk,
    s3_env,
    say,
    stop,
    wait_ready,
)

from continuum.server.model import load_served_model
from continuum.storage import ObjectStore, S3Settings
from continuum.trainer.config import TrainingConfig
from continuum.trainer.run import run_training

CONFIGS = {"alone": None, "shadow": 0, "canary50": 50}  # name -> candidate weight
TARGET_THROUGHPUT = 0.7
TARGET_P99 = 1.5
CONNECTIONS = 16
# Not server_vs_mlserver's port: another bench may run beside this one on a shared machine.
PORT = PORTS["continuum"] + 137


def publish_twice(store: ObjectStore, short: str) -> Any:
    """Versions 1 and 2 of the model (the same spec trained twice); version 1 as loaded."""
    model = MODELS[short]
    data = TABLES[model.table](5000, 0).to_csv(index=False).encode()
    store.put_bytes(f"datasets/{model.table}/part-0.csv", data)
    spec = {
        "model": model.name,
        "dataset": {"uri": f"s3://{store.bucket}/datasets/{model.table}/", "target": "label"},
        "estimator": {"class": model.estimator, "params": model.params},
        "preprocessing": model.preprocessing,
        "evaluation": {"metric": "accuracy", "mustBeat": "none"},
        "storage": {"bucket": store.bucket},
    }
    for _ in range(2):
        run_training(TrainingConfig.from_spec(spec), store, progress=lambda *a, **k: None)
    return load_served_model(store, model.name, 1)


def start(env: dict[str, str], bucket: str, model: str, weight: int | None, log: Path) -> Any:
    command = [
        "taskset", "-c", "0", str(REPO / ".venv" / "bin" / "continuum"), "serve",
        "--model", model, "--version", "1", "--host", HOST,
        "--port", str(PORT), "--inference-log", "false",
    ]  # fmt: skip
    extra = {**env, "CONTINUUM_S3_BUCKET": bucket}
    if weight is not None:
        extra |= {"CONTINUUM_CANDIDATE_VERSION": "2", "CONTINUUM_CANDIDATE_WEIGHT": str(weight),
                  "CONTINUUM_ROLLOUT_STEP": "bench"}  # fmt: skip
    return _spawn(command, extra, log)


@dataclass(frozen=True)
class Setup:
    """What every run serves and sends."""

    env: dict[str, str]
    bucket: str
    served: Any
    bodies: Path
    body_list: list[str]
    expected: Any
    duration: float
    workdir: Path


def one_run(setup: Setup, name: str) -> dict[str, Any]:
    env, bucket, served, workdir = setup.env, setup.bucket, setup.served, setup.workdir
    bodies, body_list, expected = setup.bodies, setup.body_list, setup.expected
    log = workdir / f"{name}.log"
    process = start(env, bucket, served.name, CONFIGS[name], log)
    try:
        base = f"http://{HOST}:{PORT}"
        wait_ready(process, base, served.name, log)
        url = f"{base}/v2/models/{served.name}/infer"
        check_answers(url, body_list, expected)
        run_wrk(url, bodies, CONNECTIONS, 3)  # warm-up
        cpu_before = group_cpu_ns(process.pid)
        result = run_wrk(url, bodies, CONNECTIONS, setup.duration)
        cpu = (group_cpu_ns(process.pid) - cpu_before) / 1000 / max(1, result["requests"])
        result["cpu_us_per_request"] = cpu
        result["rollout"] = _counters(base) if CONFIGS[name] is not None else None
        say(f"  {name:9} c={CONNECTIONS} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:6.2f} "
            f"ms  p99 {result['p99_ms']:6.2f} ms  CPU {cpu:6.1f} us/request  "
            f"errors {result['errors_total']}")  # fmt: skip
        return result
    finally:
        stop(process)


def _counters(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/v2/rollout", timeout=5) as answer:
        found: dict[str, Any] = json.loads(answer.read())
    return {"compared": found["compared"], "candidate_scored": found["candidate"]["scored"],
            "candidate_answered": found["candidate"]["answered"]}  # fmt: skip


def summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    med = {name: {key: statistics.median(r[key] for r in results)
                  for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")}
           for name, results in runs.items()}  # fmt: skip
    alone = med["alone"]
    for values in med.values():
        values["cpu_ratio"] = values["cpu_us_per_request"] / alone["cpu_us_per_request"]
        values["throughput_ratio"] = values["rps"] / alone["rps"]
        values["p99_ratio"] = values["p99_ms"] / alone["p99_ms"]
    shadow = med["shadow"]
    verdict = {
        "throughput": shadow["throughput_ratio"] >= TARGET_THROUGHPUT,
        "p99": shadow["p99_ratio"] <= TARGET_P99,
    }
    return {"median": med, "targets_met": verdict}


def markdown(result: dict[str, Any], command: str) -> str:
    lines = [
        f"`{command}` ({result['when']}, model {result['model']}, c{CONNECTIONS}, "
        f"{result['rounds']} rounds of {result['duration']} s, medians):",
        "",
        "| server | req/s | p50 ms | p99 ms | CPU us/request | throughput vs alone | "
        "p99 vs alone | CPU vs alone |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, v in result["summary"]["median"].items():
        lines.append(f"| {name} | {v['rps']:.0f} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | "
                     f"{v['cpu_us_per_request']:.0f} | {v['throughput_ratio']:.2f}x | "
                     f"{v['p99_ratio']:.2f}x | {v['cpu_ratio']:.2f}x |")  # fmt: skip
    met = result["summary"]["targets_met"]
    lines += ["", f"Targets (shadow: throughput >= {TARGET_THROUGHPUT}x, p99 <= {TARGET_P99}x): "
              f"throughput {'met' if met['throughput'] else 'MISSED'}, "
              f"p99 {'met' if met['p99'] else 'MISSED'}."]  # fmt: skip
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="demo", choices=sorted(MODELS))
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    require_tools()
    env = s3_env()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
    with bench_bucket(env) as bucket, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        s3 = S3Settings(bucket=bucket, endpoint_url=env["CONTINUUM_S3_ENDPOINT"],
                        region=env["AWS_DEFAULT_REGION"], access_key=env["AWS_ACCESS_KEY_ID"],
                        secret_key=env["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
        store = ObjectStore(s3)
        served = publish_twice(store, args.model)
        rows = TABLES[MODELS[args.model].table](2048, 1)[MODELS[args.model].features].iloc[:512]
        body_list = [request_body(row, served) for _, row in rows.iterrows()]
        bodies = workdir / "bodies.jsonl"
        bodies.write_text("\n".join(body_list) + "\n")
        expected = served.pipeline.predict(rows)
        setup = Setup(env, bucket, served, bodies, body_list, expected, args.duration, workdir)
        for round_ in range(args.rounds):
            say(f"round {round_ + 1}/{args.rounds}")
            for name in CONFIGS:
                runs[name].append(one_run(setup, name))
    result = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "model": args.model,
        "rounds": args.rounds,
        "duration": args.duration,
        "runs": runs,
        "summary": summary(runs),
    }
    out = REPO / "bench" / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}-rollout.json"
    out.write_text(json.dumps(result, indent=1))
    print(markdown(result, "bench/rollout_shadow.py " + " ".join(sys.argv[1:])))
    say(f"results in {out}")
    return 0 if all(result["summary"]["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
