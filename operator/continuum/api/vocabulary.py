"""The words of the API contract that are not schema: kinds, plurals, conditions, reasons,
labels and annotations.

Everything a user, a dashboard, ``kubectl wait --for=condition=...`` or an Argo CD health check
may match on is spelled here once; controllers, workloads and tools import it from
``continuum.api`` instead of repeating the literal. A rename here is an API change.

Condition types follow kstatus: ``Ready``, ``Reconciling`` and ``Stalled`` on every kind, plus
one or two that say what each kind is about. Reasons are CamelCase (the ``Condition.reason``
pattern) and are the same words the Events of the same transition use.
"""

from __future__ import annotations

from typing import Final

from continuum.api.common import GROUP

# -- kinds and their REST plurals -------------------------------------------------------------
TRAINING_JOB: Final = "TrainingJob"
MODEL_DEPLOYMENT: Final = "ModelDeployment"
DRIFT_MONITOR: Final = "DriftMonitor"
TRAINING_JOBS: Final = "trainingjobs"
MODEL_DEPLOYMENTS: Final = "modeldeployments"
DRIFT_MONITORS: Final = "driftmonitors"

# -- condition types --------------------------------------------------------------------------
READY: Final = "Ready"  # every kind: the object does what it says
RECONCILING: Final = "Reconciling"  # every kind: the operator is still working towards it
STALLED: Final = "Stalled"  # every kind: it cannot get there without a change
SUCCEEDED: Final = "Succeeded"  # TrainingJob: the run produced a model
QUALIFIED: Final = "Qualified"  # TrainingJob: the model passed its gate
AVAILABLE: Final = "Available"  # ModelDeployment: a verified version answers requests
PROGRESSING: Final = "Progressing"  # ModelDeployment: a rollout is under way
DEGRADED: Final = "Degraded"  # ModelDeployment: the last rollout failed
DRIFT_DETECTED: Final = "DriftDetected"  # DriftMonitor: the last conclusive check's verdict
# DriftMonitor: the last check's window failed a schema or data-quality check (spec.quality)
DATA_QUALITY_FAILED: Final = "DataQualityFailed"
# DriftMonitor: live performance below holdout - maxDrop for performance.consecutiveChecks
PERFORMANCE_DEGRADED: Final = "PerformanceDegraded"

# -- reasons (of conditions and the Events of the same transition) ----------------------------
# every kind: reconciles keep failing (Reconciling True, one Warning Event), then work again
RECONCILE_FAILING: Final = "ReconcileFailing"
RECONCILE_RECOVERED: Final = "ReconcileRecovered"
# TrainingJob
JOB_CREATED: Final = "JobCreated"
JOB_FAILED: Final = "JobFailed"
TRAINING_SUCCEEDED: Final = "TrainingSucceeded"
TRAINING_FAILED: Final = "TrainingFailed"
MANIFEST_UNREADABLE: Final = "ManifestUnreadable"
NOT_QUALIFIED: Final = "NotQualified"
FAILED: Final = "Failed"
# ModelDeployment
NO_VERSION: Final = "NoVersion"
WAITING_FOR_VERSION: Final = "WaitingForVersion"
SERVING: Final = "Serving"
SCALED_TO_ZERO: Final = "ScaledToZero"
NO_READY_REPLICAS: Final = "NoReadyReplicas"
AS_EXPECTED: Final = "AsExpected"
ROLLOUT_STARTED: Final = "RolloutStarted"
ROLLING_OUT: Final = "RollingOut"
ROLLING_BACK: Final = "RollingBack"
ROLLOUT_COMPLETE: Final = "RolloutComplete"
ROLLOUT_FAILED: Final = "RolloutFailed"
ROLLED_BACK: Final = "RolledBack"
PROMOTED: Final = "Promoted"
PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"  # the Deployment controller's
# ModelDeployment progressive rollouts (spec.rollout)
ROLLOUT_STEP: Final = "RolloutStep"  # a step of a shadow/canary rollout started
ANALYSING: Final = "Analysing"  # Progressing: a step's evidence is being gathered
ROLLOUT_PAUSED: Final = "RolloutPaused"  # spec.rollout.paused holds the step
ANALYSIS_FAILED: Final = "AnalysisFailed"  # a signal failed: the candidate was rolled back
ROLLOUT_ABORTED: Final = "RolloutAborted"  # rolled back by the rollout-action annotation
EVIDENCE_UNREADABLE: Final = "EvidenceUnreadable"  # the servers' counters could not be read
# DriftMonitor
CHECK_RUNNING: Final = "CheckRunning"
CHECK_FAILED: Final = "CheckFailed"
CHECKED: Final = "Checked"
WAITING_FOR_DEPLOYMENT: Final = "WaitingForDeployment"
DATASET_DRIFT: Final = "DatasetDrift"
RETRAINING_TRIGGERED: Final = "RetrainingTriggered"
RETRAINING_SUPPRESSED: Final = "RetrainingSuppressed"
QUALITY_CHECKS_FAILED: Final = "QualityChecksFailed"  # DataQualityFailed=True
QUALITY_CHECKS_PASSED: Final = "QualityChecksPassed"
QUALITY_NOT_CHECKED: Final = "QualityNotChecked"  # disabled, too few rows, or an old monitor
PERFORMANCE_DROP: Final = "PerformanceDrop"  # degraded for consecutiveChecks checks
PERFORMANCE_DROP_UNCONFIRMED: Final = "PerformanceDropUnconfirmed"  # fewer checks so far
PERFORMANCE_HELD: Final = "PerformanceHeld"
INSUFFICIENT_LABELS: Final = "InsufficientLabels"

# -- labels and annotations on the objects the operator creates -------------------------------
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
PART_OF: Final = "app.kubernetes.io/part-of"
COMPONENT: Final = "app.kubernetes.io/component"
NAME_LABEL: Final = "app.kubernetes.io/name"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
OPERATOR: Final = "continuum"  # the value of managed-by and part-of
MANAGED_SELECTOR: Final = f"{MANAGED_BY}={OPERATOR}"
TRAINING_JOB_LABEL: Final = f"{GROUP}/training-job"
MODEL_LABEL: Final = f"{GROUP}/model"
MODEL_VERSION_LABEL: Final = f"{GROUP}/model-version"
MODEL_DEPLOYMENT_LABEL: Final = f"{GROUP}/model-deployment"
ROLLOUT_STEP_LABEL: Final = f"{GROUP}/rollout-step"  # server pods of a progressive rollout step
DRIFT_MONITOR_LABEL: Final = f"{GROUP}/drift-monitor"
CHECK_TIME_ANNOTATION: Final = f"{GROUP}/check-time"
REPORT_ANNOTATION: Final = f"{GROUP}/report"
REASON_ANNOTATION: Final = f"{GROUP}/reason"
# what set off a retraining TrainingJob (one of RETRAIN_TRIGGERS) and its evidence (JSON:
# the report URI, and for a performance trigger the metric, its basis and interval)
TRIGGER_ANNOTATION: Final = f"{GROUP}/trigger"
EVIDENCE_ANNOTATION: Final = f"{GROUP}/evidence"
TRIGGER_DRIFT: Final = "drift"
TRIGGER_PERFORMANCE: Final = "performance"
TRIGGER_SCHEDULE: Final = "schedule"
RETRAIN_TRIGGERS: Final = (TRIGGER_DRIFT, TRIGGER_PERFORMANCE, TRIGGER_SCHEDULE)
# promote-<version> or abort-<version>: act on that candidate of a progressive rollout now
ROLLOUT_ACTION_ANNOTATION: Final = f"{GROUP}/rollout-action"
ROLLOUT_PROMOTE: Final = "promote"  # the annotation's verbs: promote-<version>, abort-<version>
ROLLOUT_ABORT: Final = "abort"
# values of the component label
COMPONENT_TRAINING: Final = "training"  # a TrainingJob's batch Job
COMPONENT_SERVING: Final = "serving"  # a ModelDeployment's Deployment, Service and HPA
COMPONENT_DRIFT_CHECK: Final = "drift-check"  # a DriftMonitor's check Job
COMPONENT_RETRAINING: Final = "retraining"  # a TrainingJob a DriftMonitor created
