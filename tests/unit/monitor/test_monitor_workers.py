"""The check spread over threads: same results in the same order, CPUs counted as granted."""

from __future__ import annotations

import resource  # POSIX only: the CI machine and the image are Linux
import threading
import time

import numpy as np
import pandas as pd
import pytest

from continuum.monitor import workers
from continuum.monitor.check import measure_features, run_check
from continuum.monitor.reference import CATEGORICAL, NUMERIC, FeatureSpec, Reference
from continuum.monitor.settings import parse_check_settings


def test_results_come_back_in_input_order_whatever_finishes_first():
    def slow_for_small(value: int) -> int:
        time.sleep(0.002 * (10 - value))  # the first items finish last
        return value * value

    assert workers.map_in_order(slow_for_small, list(range(10)), 4) == [v * v for v in range(10)]


def test_work_runs_on_several_threads():
    seen: set[str] = set()
    barrier = threading.Barrier(2, timeout=5)

    def record(_: int) -> None:
        seen.add(threading.current_thread().name)
        barrier.wait()  # both workers must be busy at once to get past this

    workers.map_in_order(record, [0, 1], 2)
    assert len(seen) == 2


def test_one_worker_runs_in_the_calling_thread():
    names = workers.map_in_order(lambda _: threading.current_thread().name, [1, 2], 1)
    assert names == [threading.current_thread().name] * 2


def test_errors_of_a_worker_reach_the_caller():
    def fail_on_three(value: int) -> int:
        if value == 3:
            raise ValueError("three")
        return value

    with pytest.raises(ValueError, match="three"):
        workers.map_in_order(fail_on_three, [1, 2, 3, 4], 2)


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000", 1), ("200000 100000", 2)],
)
def test_cgroup_quota_in_whole_cpus(tmp_path, text, cpus):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(text)
    assert workers.cgroup_cpu_quota(cpu_max) == cpus


def test_no_cgroup_file_means_no_quota(tmp_path):
    assert workers.cgroup_cpu_quota(tmp_path / "absent") is None


def test_a_quota_caps_the_affinity(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000")
    assert workers.available_cpus(cpu_max) == 1


def test_worker_count_is_bounded_by_tasks_cpus_and_the_cap():
    assert workers.worker_count(3, cpus=16) == 3
    assert workers.worker_count(50, cpus=2) == 2
    assert workers.worker_count(50, cpus=64) == workers.MAX_WORKERS
    assert workers.worker_count(0, cpus=4) == 1


def _mixed(rows: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {f"n{i}": rng.normal(shift * (i % 3), 1, rows) for i in range(6)}
    columns |= {f"c{i}": rng.choice(["a", "b", "c"], rows) for i in range(3)}
    return pd.DataFrame(columns)


def test_parallel_measurements_equal_serial_ones():
    reference = _mixed(20_000, 1, 0.0)
    current = _mixed(15_000, 2, 0.05)
    specs = tuple(
        FeatureSpec(name, NUMERIC if name.startswith("n") else CATEGORICAL)
        for name in reference.columns
    )
    ref = Reference(specs, reference, None, None)
    serial = measure_features(ref, current, workers=1)
    parallel = measure_features(ref, current, workers=4)
    assert parallel == serial


def test_a_check_is_the_same_on_any_number_of_cpus(monkeypatch):
    reference = _mixed(12_000, 3, 0.0)
    current = _mixed(12_000, 4, 0.2)
    specs = tuple(
        FeatureSpec(name, NUMERIC if name.startswith("n") else CATEGORICAL)
        for name in reference.columns
    )
    settings = parse_check_settings({"window": {"maxRows": 12_000, "minSamples": 1}})
    ref = Reference(specs, reference, None, None)
    results = []
    for cpus in (1, 3):
        monkeypatch.setattr(workers, "available_cpus", lambda cpus=cpus: cpus)
        results.append(run_check(ref, current, settings))
    assert [f.to_json() for f in results[0].features] == [f.to_json() for f in results[1].features]
    assert results[0].verdict == results[1].verdict


def test_freed_memory_is_kept_for_reuse_on_glibc():
    # The CI image and this machine run glibc: the setting must take there.
    assert workers.keep_freed_memory_for_reuse() is True
    assert workers.keep_freed_memory_for_reuse() is True  # once per process, cached


def test_feature_after_feature_needs_no_fresh_pages():
    rng = np.random.default_rng(9)
    reference = pd.DataFrame({f"n{i}": rng.normal(0, 1, 50_000) for i in range(4)})
    current = pd.DataFrame({f"n{i}": rng.normal(0.1, 1, 50_000) for i in range(4)})
    specs = tuple(FeatureSpec(name, NUMERIC) for name in reference.columns)
    ref = Reference(specs, reference, None, None)
    measure_features(ref, current, workers=1)  # the heap grows to its working size once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    measure_features(ref, current, workers=1)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    # each feature's temporaries are ~10 MB (2 500 pages): reused, they fault in almost nothing
    assert faults < 1_000
