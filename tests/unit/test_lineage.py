"""``continuum lineage``: the chain report -> TrainingJob -> version -> ModelDeployment, as text."""

from __future__ import annotations

import json
from typing import Any

from continuum.lineage import (
    build_lineage,
    build_parser,
    format_json,
    format_lineage,
    lineage_document,
    serving_versions,
)

REPORT = "s3://continuum/reports/drift/20260301T120000Z/"


def tj(
    name: str, version: int | None, *, qualified: bool = True, drift: bool = False
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": f"2026-03-01T1{version or 9}:00:00Z"}
    if drift:
        meta["labels"] = {"continuum.dev/drift-monitor": "drift"}
        reason = "dataset drift in 2 consecutive checks"
        meta["annotations"] = {"continuum.dev/report": REPORT, "continuum.dev/reason": reason}
    status: dict[str, Any] = {"phase": "Succeeded" if version else "Running"}
    if version:
        status |= {"model": {"version": version}, "qualified": qualified,
                   "metrics": {"accuracy": 0.91234}}  # fmt: skip
    return {"metadata": meta, "spec": {"model": "churn"}, "status": status}


MD = {
    "metadata": {"name": "churn"},
    "spec": {"model": "churn"},
    "status": {
        "servingVersion": 2,
        "history": [
            {"version": 1, "trainingJob": "churn-1", "time": "2026-03-01T11:00:00Z",
             "outcome": "Promoted"},
            {"version": 2, "trainingJob": "drift-retrain-a", "time": "2026-03-01T12:10:00Z",
             "outcome": "Promoted"},
        ],
    },
}  # fmt: skip
OTHER = {"metadata": {"name": "x"}, "spec": {"model": "other"}, "status": {}}


def OLD_REPLAY(trigger: str) -> list[str]:  # noqa: N802 - reads as the constant block it is
    """What a TrainingJob from before snapshots, image digests and libraries shows."""
    return [
        f"     trigger: {trigger}",
        "     dataset: ? (fingerprint ?)",
        "     image: ? (digest ?)",
        "     libraries: ?",
        "     estimator: ? {}; split seed 42",
    ]


def test_the_chain_of_a_retrained_version() -> None:
    tjs = [
        tj("drift-retrain-a", 2, drift=True),
        tj("churn-1", 1),
        tj("other", 1) | {"spec": {"model": "x"}},
    ]
    links = build_lineage("churn", tjs, [MD, OTHER])
    assert [link.training_job for link in links] == ["churn-1", "drift-retrain-a"]
    text = format_lineage("churn", "ml", links, serving_versions("churn", [MD, OTHER]))
    assert text.splitlines() == [
        "model churn in namespace ml",
        "",
        "TrainingJob churn-1 (Succeeded, qualified, accuracy=0.9123) (created directly)",
        *OLD_REPLAY("manual"),
        "  -> version 1",
        "  -> ModelDeployment churn: Promoted 2026-03-01T11:00:00Z",
        "",
        f"drift report {REPORT} (DriftMonitor drift) (dataset drift in 2 consecutive checks)",
        "  -> TrainingJob drift-retrain-a (Succeeded, qualified, accuracy=0.9123)",
        *OLD_REPLAY("drift"),
        "  -> version 2",
        "  -> ModelDeployment churn: Promoted 2026-03-01T12:10:00Z",
        "",
        "ModelDeployment churn serves version 2",
    ]


def test_unqualified_and_unfinished_runs() -> None:
    links = build_lineage("churn", [tj("b", 3, qualified=False, drift=True), tj("c", None)], [])
    text = format_lineage("churn", "ml", links, {})
    assert "  -> version 3\n  -> not served (not qualified)" in text
    assert "TrainingJob c (Running)" in text
    assert format_lineage("churn", "ml", [], {"churn": None}).splitlines() == [
        "model churn in namespace ml",
        "  no TrainingJobs of this model",
        "",
        "ModelDeployment churn serves nothing yet",
    ]


def test_parser() -> None:
    args = build_parser().parse_args(["churn", "-n", "ml"])
    assert (args.model, args.namespace) == ("churn", "ml")


SNAPSHOT = "s3://continuum/snapshots/churn/" + "ab" * 16 + "/data.parquet"
DIGEST = "sha256:" + "c" * 64
EVIDENCE = {"report": "s3://continuum/reports/perf/1/", "metric": "accuracy",
            "basis": "realised", "value": 0.71, "lower": 0.66, "upper": 0.76}  # fmt: skip


def retrained(evidence: str | None = json.dumps(EVIDENCE)) -> dict[str, Any]:
    """A retraining TrainingJob of today: trigger, evidence, feedback snapshot, image."""
    found = tj("perf-retrain-b", 3)
    annotations = {"continuum.dev/trigger": "performance"}
    if evidence is not None:
        annotations["continuum.dev/evidence"] = evidence
    found["metadata"]["annotations"] = annotations
    found["spec"] |= {
        "dataset": {"uri": "s3://data/churn/base/", "target": "churned",
                    "feedback": {"sinceSeconds": 86400}},
        "estimator": {"class": "RandomForestClassifier", "params": {"n_estimators": 50}},
        "split": {"seed": 7}, "search": {"space": {"max_depth": [3, 5]}, "seed": 11},
    }  # fmt: skip
    found["status"] |= {
        "dataset": {"fingerprint": "sha256:f00", "rows": 520, "snapshot": SNAPSHOT,
                    "feedbackRows": 120, "baseRows": 400},
        "image": {"name": "ghcr.io/x/continuum:1.2", "digest": DIGEST},
        "libraries": {"python": "3.12.3", "scikit-learn": "1.5.2"},
        "search": {"bestParams": {"max_depth": 5}},
    }  # fmt: skip
    return found


def test_a_version_shows_its_trigger_evidence_and_what_replays_it() -> None:
    text = format_lineage("churn", "ml", build_lineage("churn", [retrained()], []), {})
    assert text.splitlines()[2:9] == [
        "TrainingJob perf-retrain-b (Succeeded, qualified, accuracy=0.9123) (created directly)",
        '     trigger: performance, evidence: {"basis": "realised", "lower": 0.66, '
        '"metric": "accuracy", "report": "s3://continuum/reports/perf/1/", '
        '"upper": 0.76, "value": 0.71}',
        f"     snapshot: {SNAPSHOT} (fingerprint sha256:f00, 120 feedback + 400 base rows)",
        f"     image: ghcr.io/x/continuum:1.2 ({DIGEST})",
        "     libraries: python 3.12.3, scikit-learn 1.5.2",
        '     estimator: RandomForestClassifier {"n_estimators": 50}, search best '
        '{"max_depth": 5}; split seed 7, search seed 11',
        "  -> version 3",
    ]


def test_malformed_evidence_is_shown_raw() -> None:
    for raw in ("{not json", "[1, 2]"):
        link = build_lineage("churn", [retrained(raw)], [])[0]
        assert (link.trigger.kind, link.trigger.raw, link.trigger.evidence) == (
            "performance", raw, None
        )  # fmt: skip
        text = format_lineage("churn", "ml", [link], {})
        assert f"trigger: performance, evidence (not a JSON object): {raw}" in text
    assert build_lineage("churn", [retrained(None)], [])[0].trigger.raw is None


def test_the_json_document_is_stable_and_complete() -> None:
    links = build_lineage("churn", [retrained(), tj("churn-1", 1)], [MD])
    text = format_json("churn", "ml", links, serving_versions("churn", [MD]))
    assert text == format_json("churn", "ml", links, serving_versions("churn", [MD]))
    document = json.loads(text)
    assert document == lineage_document("churn", "ml", links, {"churn": 2})
    old, new = document["versions"]
    assert new["trigger"] == {"type": "performance", "evidence": EVIDENCE, "evidenceRaw": None,
                              "monitor": None, "report": None, "reason": None}  # fmt: skip
    assert new["dataset"] == {"uri": SNAPSHOT, "snapshot": True, "fingerprint": "sha256:f00",
                              "feedbackRows": 120, "baseRows": 400}  # fmt: skip
    assert new["image"] == {"name": "ghcr.io/x/continuum:1.2", "digest": DIGEST}
    assert new["estimator"]["searchBestParams"] == {"max_depth": 5}
    assert new["seeds"] == {"split": 7, "search": 11}
    assert old["trigger"]["type"] == "manual"
    assert old["image"] == {"name": None, "digest": None}
    assert old["dataset"]["uri"] is None
    assert old["libraries"] == {}
    assert old["seeds"] == {"split": 42, "search": None}
    assert old["served"] == [{"deployment": "churn", "outcome": "Promoted",
                              "time": "2026-03-01T11:00:00Z"}]  # fmt: skip
    assert set(old) == set(new)


def test_a_dataset_uri_is_shown_when_there_is_no_snapshot() -> None:
    plain = tj("churn-1", 1)
    plain["spec"]["dataset"] = {"uri": "s3://data/churn.csv", "target": "y"}
    plain["status"]["dataset"] = {"fingerprint": "sha256:1", "rows": 10}
    text = format_lineage("churn", "ml", build_lineage("churn", [plain], []), {})
    assert "     dataset: s3://data/churn.csv (fingerprint sha256:1)" in text


def test_parser_output() -> None:
    assert build_parser().parse_args(["churn", "-o", "json"]).output == "json"
    assert build_parser().parse_args(["churn"]).output == "text"
