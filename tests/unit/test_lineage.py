"""``continuum lineage``: the chain report -> TrainingJob -> version -> ModelDeployment, as text."""

from __future__ import annotations

from typing import Any

from continuum.lineage import build_lineage, build_parser, format_lineage, serving_versions

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
        "  -> version 1",
        "  -> ModelDeployment churn: Promoted 2026-03-01T11:00:00Z",
        "",
        f"drift report {REPORT} (DriftMonitor drift) (dataset drift in 2 consecutive checks)",
        "  -> TrainingJob drift-retrain-a (Succeeded, qualified, accuracy=0.9123)",
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
