"""Invalid custom resources are refused by the real API server, with a message naming the field.

Each row of ``CASES`` takes a valid TrainingJob, ModelDeployment or DriftMonitor, breaks one
thing (a wrong type, an out-of-range value, an unknown estimator, an unknown field, a missing
required field, a bad cross-field combination, an edit of an immutable spec) and sends it to
the API server: a real create (with server-side field validation ``Strict``) or, for edits, a
merge patch of an object created valid. The answer must be an error whose message contains the
row's expected text, which names the field.

``docs/invalid-resources.md`` is rendered from this table (``python -m
tests.cluster.test_invalid_resources > docs/invalid-resources.md``);
tests/unit/test_invalid_resources_doc.py fails when the page is stale.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from tests.kit.cluster import RESTRICTED

# Part of the reliability and security suite (`make test-reliability`).
pytestmark = pytest.mark.reliability

GROUP, VERSION = "continuum.dev", "v1alpha1"
PLURALS = {
    "TrainingJob": "trainingjobs",
    "ModelDeployment": "modeldeployments",
    "DriftMonitor": "driftmonitors",
}
_DROP = object()

STORAGE = {
    "endpoint": "http://minio.continuum-system.svc:9000",
    "bucket": "models",
    "secretRef": {"name": "s3-credentials"},
}
TRAINING_SPEC: dict[str, Any] = {
    "model": "churn",
    "dataset": {
        "uri": "s3://data/churn.csv",
        "target": "churned",
        "features": ["tenure", "plan"],
    },
    "estimator": {"class": "LogisticRegression", "params": {"max_iter": 200}},
    "preprocessing": {"categorical": {"columns": ["plan"]}},
    "evaluation": {"metric": "accuracy", "threshold": 0.7},
    "storage": STORAGE,
}
VALID: dict[str, dict[str, Any]] = {
    "TrainingJob": {"spec": TRAINING_SPEC},
    "ModelDeployment": {
        "spec": {"model": "churn", "version": {"policy": "latestQualified"}, "storage": STORAGE}
    },
    "DriftMonitor": {
        "spec": {
            "deployment": "churn",
            "window": {"maxRows": 1000, "minSamples": 100},
            "retrain": {"enabled": True, "template": TRAINING_SPEC},
        }
    },
}


@dataclass(frozen=True)
class Case:
    """One invalid resource: a valid ``kind`` with each path in ``changes`` set (or removed)."""

    id: str
    kind: str
    wrong: str
    changes: dict[str, Any]
    message: str  # text the server's answer must contain; it names the field
    update: bool = False  # merge-patch an object created valid, instead of creating

    def change(self) -> str:
        """The edit, as shown in the docs table."""
        parts = []
        for path, value in self.changes.items():
            if value is _DROP:
                parts.append(f"without `{path}`")
            else:
                parts.append(f"`{path}: {_shown(value)}`")
        return ("patch " if self.update else "create with ") + ", ".join(parts)

    def body(self, name: str) -> dict[str, Any]:
        body = copy.deepcopy(VALID[self.kind])
        body.update(apiVersion=f"{GROUP}/{VERSION}", kind=self.kind, metadata={"name": name})
        if not self.update:
            for path, value in self.changes.items():
                _edit(body, path, value)
        return body

    def patch(self) -> dict[str, Any]:
        patch: dict[str, Any] = {}
        for path, value in self.changes.items():
            _edit(patch, path, value)
        return patch


def _shown(value: Any) -> str:
    """``value`` as JSON, long dicts and strings abbreviated (``{"p0": 0, … 65 keys}``)."""
    text = json.dumps(value, separators=(", ", ": "))
    if len(text) <= 60:
        return text
    if isinstance(value, dict):
        first = next(iter(value))
        return f"{{{json.dumps(first)}: {json.dumps(value[first])}, … {len(value)} keys}}"
    if isinstance(value, str) and len(set(value)) == 1:
        return f'"{value[0]}" times {len(value)}'
    return text


def _edit(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    if value is _DROP:
        del node[leaf]
    else:
        node[leaf] = value


TJ, MD, DM = "TrainingJob", "ModelDeployment", "DriftMonitor"
RANGE = "in body should be"
TYPE = "in body must be of type"
CEL = 'Invalid value: "object":'
CASES: tuple[Case, ...] = (
    # wrong types
    Case("tj-backofflimit-string", TJ, "wrong type (string for integer)",
         {"spec.backoffLimit": "three"},
         f'spec.backoffLimit: Invalid value: "string": spec.backoffLimit {TYPE} integer'),
    Case("tj-features-string", TJ, "wrong type (string for list)",
         {"spec.dataset.features": "tenure,plan"},
         f'spec.dataset.features: Invalid value: "string": spec.dataset.features {TYPE} array'),
    Case("tj-stratify-string", TJ, "wrong type (string for boolean)",
         {"spec.split.stratify": "yes"},
         f'spec.split.stratify: Invalid value: "string": spec.split.stratify {TYPE} boolean'),
    Case("tj-params-list", TJ, "wrong type (list for object)",
         {"spec.estimator.params": ["max_iter", 200]},
         f'spec.estimator.params: Invalid value: "array": spec.estimator.params {TYPE} object'),
    Case("md-replicas-string", MD, "wrong type (string for integer)",
         {"spec.replicas": "two"},
         f'spec.replicas: Invalid value: "string": spec.replicas {TYPE} integer'),
    Case("dm-consecutive-float", DM, "wrong type (fraction for integer)",
         {"spec.consecutiveChecks": 1.5},
         f'spec.consecutiveChecks: Invalid value: "number": spec.consecutiveChecks {TYPE} '
         "integer"),
    # out of range
    Case("tj-testsize-high", TJ, "out of range (above a fractional maximum)",
         {"spec.split.testSize": 0.9},
         'spec.split.testSize: Invalid value: "number": must be at least 0.05 and at most 0.5'),
    Case("tj-deadline-low", TJ, "out of range (below minimum)",
         {"spec.activeDeadlineSeconds": 30},
         f"spec.activeDeadlineSeconds: Invalid value: 30: spec.activeDeadlineSeconds {RANGE} "
         "greater than or equal to 60"),
    Case("tj-backofflimit-high", TJ, "out of range (above maximum)",
         {"spec.backoffLimit": 11},
         f"spec.backoffLimit: Invalid value: 11: spec.backoffLimit {RANGE} less than or equal "
         "to 10"),
    Case("tj-nullfraction-high", TJ, "out of range (above maximum)",
         {"spec.dataset.validation": {"maxNullFraction": 1.5}},
         "spec.dataset.validation.maxNullFraction: Invalid value: 1.5: "
         f"spec.dataset.validation.maxNullFraction {RANGE} less than or equal to 1"),
    Case("tj-params-too-many", TJ, "too many keys (65 estimator params)",
         {"spec.estimator.params": {f"p{i}": i for i in range(65)}},
         "spec.estimator.params: Too many: 65: must have at most 64 items"),
    Case("md-replicas-negative", MD, "out of range (below minimum)",
         {"spec.replicas": -1},
         f"spec.replicas: Invalid value: -1: spec.replicas {RANGE} greater than or equal to 0"),
    Case("md-samplerate-high", MD, "out of range (above maximum)",
         {"spec.inferenceLog": {"sampleRate": 1.5}},
         "spec.inferenceLog.sampleRate: Invalid value: 1.5: spec.inferenceLog.sampleRate "
         f"{RANGE} less than or equal to 1"),
    Case("md-pinned-zero", MD, "out of range (version 0)",
         {"spec.version": {"pinned": 0}},
         f"spec.version.pinned: Invalid value: 0: spec.version.pinned {RANGE} greater than or "
         "equal to 1"),
    Case("dm-pvalue-zero", DM, "out of range (exclusive minimum)",
         {"spec.tests": {"pValue": 0}},
         'spec.tests.pValue: Invalid value: "number": must be greater than 0 and at most 0.5'),
    Case("dm-pvalue-high", DM, "out of range (an integer above a fractional maximum)",
         {"spec.tests": {"pValue": 2}},
         'spec.tests.pValue: Invalid value: "number": must be greater than 0 and at most 0.5'),
    Case("dm-driftshare-high", DM, "out of range (above maximum, minimum also set)",
         {"spec.tests": {"driftShare": 1.5}},
         f"spec.tests.driftShare: Invalid value: 1.5: spec.tests.driftShare {RANGE} less than "
         "or equal to 1"),
    Case("dm-interval-low", DM, "out of range (below minimum)",
         {"spec.schedule": {"intervalSeconds": 10}},
         "spec.schedule.intervalSeconds: Invalid value: 10: spec.schedule.intervalSeconds "
         f"{RANGE} greater than or equal to 60"),
    # a list that is a set, with a value twice
    Case("tj-features-duplicate", TJ, "duplicate in a set (features)",
         {"spec.dataset.features": ["tenure", "plan", "tenure"]},
         'spec.dataset.features[2]: Duplicate value: "tenure"'),
    Case("tj-categorical-duplicate", TJ, "duplicate in a set (categorical columns)",
         {"spec.preprocessing.categorical.columns": ["plan", "plan"]},
         'spec.preprocessing.categorical.columns[1]: Duplicate value: "plan"'),
    # not one of the allowed values, or not matching the pattern
    Case("tj-unknown-estimator", TJ, "unknown estimator class",
         {"spec.estimator.class": "XGBClassifier"},
         'spec.estimator.class: Unsupported value: "XGBClassifier": supported values: '
         '"LogisticRegression"'),
    Case("tj-unknown-metric", TJ, "unknown metric",
         {"spec.evaluation.metric": "logloss"},
         'spec.evaluation.metric: Unsupported value: "logloss": supported values: "accuracy"'),
    Case("tj-format-json", TJ, "unsupported dataset format",
         {"spec.dataset.format": "json"},
         'spec.dataset.format: Unsupported value: "json": supported values: "csv", "parquet"'),
    Case("tj-uri-https", TJ, "dataset URI not s3://",
         {"spec.dataset.uri": "https://x/y"},
         'spec.dataset.uri: Invalid value: "https://x/y": spec.dataset.uri in body should '
         "match '^s3://"),
    Case("tj-model-uppercase", TJ, "model name not a DNS label",
         {"spec.model": "My_Model"},
         'spec.model: Invalid value: "My_Model": spec.model in body should match'),
    Case("tj-memory-words", TJ, "resource quantity that is not a quantity",
         {"spec.resources": {"requests": {"memory": "lots"}}},
         'spec.resources.requests.memory: Invalid value: "lots": spec.resources.requests.memory '
         "in body should match"),
    Case("tj-ca-bundle-key-path", TJ, "CA bundle key that is not a Secret key",
         {"spec.storage.endpoint": "https://minio.example:9000",
          "spec.storage.caBundle": {"secretKeyRef": {"name": "s3-ca", "key": "certs/ca.crt"}}},
         "spec.storage.caBundle.secretKeyRef.key: Invalid value: \"certs/ca.crt\": "
         "spec.storage.caBundle.secretKeyRef.key in body should match"),
    Case("tj-endpoint-no-scheme", TJ, "endpoint without http(s)://",
         {"spec.storage.endpoint": "minio:9000"},
         'spec.storage.endpoint: Invalid value: "minio:9000": spec.storage.endpoint in body '
         "should match '^https?://"),
    Case("md-policy-unknown", MD, "unknown version policy",
         {"spec.version": {"policy": "latest"}},
         'spec.version.policy: Unsupported value: "latest": supported values: '
         '"latestQualified"'),
    Case("dm-correction-unknown", DM, "unknown multiple-testing correction",
         {"spec.tests": {"correction": "fdr"}},
         'spec.tests.correction: Unsupported value: "fdr": supported values: "bonferroni", '
         '"holm", "bh"'),
    Case("dm-template-unknown-estimator", DM, "unknown estimator in the retrain template",
         {"spec.retrain.template.estimator.class": "Prophet"},
         'spec.retrain.template.estimator.class: Unsupported value: "Prophet"'),
    # unknown fields (fieldValidation=Strict)
    Case("tj-unknown-field", TJ, "unknown field (misspelt)",
         {"spec.dataset.taget": "churned"},
         'unknown field "spec.dataset.taget"'),
    Case("tj-unknown-top-field", TJ, "unknown field",
         {"spec.retries": 3},
         'unknown field "spec.retries"'),
    Case("md-unknown-field", MD, "unknown field (misspelt)",
         {"spec.replica": 2},
         'unknown field "spec.replica"'),
    Case("dm-unknown-field", DM, "unknown field",
         {"spec.schedule": {"cron": "*/5 * * * *"}},
         'unknown field "spec.schedule.cron"'),
    # missing required fields
    Case("tj-no-spec", TJ, "no spec",
         {"spec": _DROP},
         "spec: Required value"),
    Case("tj-no-model", TJ, "required field missing",
         {"spec.model": _DROP},
         "spec.model: Required value"),
    Case("tj-no-target", TJ, "required field missing",
         {"spec.dataset.target": _DROP},
         "spec.dataset.target: Required value"),
    Case("tj-no-estimator-class", TJ, "required field missing",
         {"spec.estimator.class": _DROP},
         "spec.estimator.class: Required value"),
    Case("tj-no-bucket", TJ, "required field missing",
         {"spec.storage.bucket": _DROP},
         "spec.storage.bucket: Required value"),
    Case("tj-secretref-no-name", TJ, "required field missing",
         {"spec.storage.secretRef": {}},
         "spec.storage.secretRef.name: Required value"),
    Case("md-no-model", MD, "required field missing",
         {"spec.model": _DROP},
         "spec.model: Required value"),
    Case("md-autoscaling-no-max", MD, "required field missing",
         {"spec.autoscaling": {"minReplicas": 2}},
         "spec.autoscaling.maxReplicas: Required value"),
    Case("dm-no-deployment", DM, "required field missing",
         {"spec.deployment": _DROP},
         "spec.deployment: Required value"),
    # bad cross-field combinations (CEL rules)
    Case("tj-metric-vs-class", TJ, "regression metric with a classifier",
         {"spec.evaluation.metric": "r2"},
         f"spec: {CEL} evaluation.metric must fit estimator.class"),
    Case("tj-target-in-features", TJ, "target listed as a feature",
         {"spec.dataset.features": ["tenure", "plan", "churned"]},
         f"spec: {CEL} dataset.target must not be listed in dataset.features"),
    Case("tj-categorical-not-feature", TJ, "categorical column not among the features",
         {"spec.preprocessing.categorical.columns": ["region"]},
         f"spec: {CEL} preprocessing.categorical.columns must be listed in dataset.features"),
    Case("tj-classes-regression", TJ, "requiredClasses on a regressor",
         {"spec.estimator.class": "Ridge", "spec.evaluation.metric": "r2",
          "spec.dataset.validation": {"requiredClasses": ["yes"]}},
         f"spec: {CEL} dataset.validation.requiredClasses needs a classification metric"),
    Case("tj-name-too-long", TJ, "name longer than 63 characters",
         {"metadata.name": "x" * 64},
         f"<nil>: {CEL} metadata.name must be at most 63 characters"),
    Case("md-version-both", MD, "both pinned and policy",
         {"spec.version": {"pinned": 1, "policy": "latestQualified"}},
         f"spec.version: {CEL} version: set exactly one of pinned or policy"),
    Case("md-version-neither", MD, "neither pinned nor policy",
         {"spec.version": {}},
         f"spec.version: {CEL} version: set exactly one of pinned or policy"),
    Case("md-autoscaling-min-max", MD, "minReplicas above maxReplicas",
         {"spec.autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
         f"spec.autoscaling: {CEL} autoscaling.minReplicas must not exceed "
         "autoscaling.maxReplicas"),
    Case("md-replicas-and-autoscaling", MD, "replicas and autoscaling together",
         {"spec.replicas": 3, "spec.autoscaling": {"maxReplicas": 5}},
         f"spec: {CEL} set replicas or autoscaling, not both"),
    Case("md-name-not-dns1035", MD, "name starting with a digit (it names a Service)",
         {"metadata.name": "1churn"},
         f"<nil>: {CEL} metadata.name must be a DNS-1035 label"),
    Case("dm-window", DM, "minSamples above maxRows",
         {"spec.window": {"maxRows": 100, "minSamples": 500}},
         f"spec.window: {CEL} window.minSamples must not exceed window.maxRows"),
    Case("dm-performance-rows", DM, "minLabels above maxRows",
         {"spec.performance": {"maxRows": 1000, "minLabels": 2000}},
         f"spec.performance: {CEL} performance.minLabels must not exceed performance.maxRows"),
    Case("dm-window-last", DM, "a time window that is not a duration",
         {"spec.window": {"maxRows": 1000, "minSamples": 100, "last": "6 hours"}},
         f"spec.window: {CEL} window.last must be a whole number of minutes, hours or days, "
         "e.g. 30m, 6h or 7d"),
    Case("dm-quality-share", DM, "a quality limit above 1",
         {"spec.quality": {"maxOutOfRangeShare": 1.5}},
         "spec.quality.maxOutOfRangeShare: Invalid value: 1.5: "
         f"spec.quality.maxOutOfRangeShare {RANGE} less than or equal to 1"),
    Case("dm-template-metric-vs-class", DM, "retrain template: classifier metric, regressor",
         {"spec.retrain.template.estimator.class": "RandomForestRegressor"},
         f"spec.retrain.template: {CEL} evaluation.metric must fit estimator.class"),
    Case("tj-ca-bundle-http", TJ, "CA bundle for an http:// endpoint",
         {"spec.storage.caBundle": {"secretKeyRef": {"name": "s3-ca", "key": "ca.crt"}}},
         f"spec.storage: {CEL} storage.caBundle needs an https:// storage.endpoint"),
    Case("md-ca-bundle-both", MD, "CA bundle from both a Secret and a ConfigMap",
         {"spec.storage.endpoint": "https://minio.example:9000",
          "spec.storage.caBundle": {"secretKeyRef": {"name": "s3-ca", "key": "ca.crt"},
                                    "configMapKeyRef": {"name": "s3-ca", "key": "ca.crt"}}},
         f"spec.storage.caBundle: {CEL} storage.caBundle: set exactly one of secretKeyRef or "
         "configMapKeyRef"),
    Case("dm-template-ca-bundle-http", DM, "retrain template: CA bundle without https",
         {"spec.retrain.template.storage.caBundle": {"configMapKeyRef": {"name": "ca",
                                                                         "key": "ca.crt"}}},
         f"spec.retrain.template.storage: {CEL} storage.caBundle needs an https://"),
    Case("md-log-hash-no-key", MD, "inference log hashing without a key",
         {"spec.inferenceLog.hash": ["plan"]},
         f"spec.inferenceLog: {CEL} inferenceLog.hash needs inferenceLog.hashKey"),
    Case("md-log-drop-and-hash", MD, "a feature both dropped and hashed",
         {"spec.inferenceLog.drop": ["plan"], "spec.inferenceLog.hash": ["plan"],
          "spec.inferenceLog.hashKey": {"name": "log-key", "key": "hmac"}},
         f"spec.inferenceLog: {CEL} inferenceLog: a feature may be in drop or in hash"),
    Case("tj-sse-key-without-kms", TJ, "a KMS key id with SSE-S3",
         {"spec.storage.encryption": {"type": "SSE-S3", "kmsKeyId": "k"}},
         f"spec.storage.encryption: {CEL} storage.encryption.kmsKeyId is only for type SSE-KMS"),
    # edits of an immutable spec
    Case("tj-edit-backofflimit", TJ, "spec edited after creation",
         {"spec.backoffLimit": 3},
         f"spec: {CEL} spec is immutable: create a new TrainingJob to retrain", update=True),
    Case("tj-edit-dataset", TJ, "spec edited after creation",
         {"spec.dataset.uri": "s3://data/other.csv"},
         f"spec: {CEL} spec is immutable", update=True),
    Case("tj-edit-params", TJ, "spec edited after creation (free-form params)",
         {"spec.estimator.params": {"max_iter": 500, "C": 0.5}},
         f"spec: {CEL} spec is immutable", update=True),
)  # fmt: skip


def rejection(api: client.ApiClient, namespace: str, case: Case) -> client.ApiException | Any:
    """Send the case to the API server; return its error (or what it accepted)."""
    objs = client.CustomObjectsApi(api)
    plural = PLURALS[case.kind]
    body = case.body(f"{case.id[:50]}-{uuid.uuid4().hex[:6]}")
    name = body["metadata"]["name"]
    try:
        if case.update:
            objs.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
            return objs.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, case.patch()
            )
        return objs.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, body, field_validation="Strict"
        )
    except client.ApiException as err:
        return err


def server_message(err: client.ApiException) -> str:
    return str(json.loads(err.body or "{}").get("message", err.reason))


@pytest.fixture(scope="module")
def invalid_ns(api: client.ApiClient, crds: None) -> Iterator[str]:
    """One namespace for the whole table (nothing valid is left in it but the edit targets)."""
    core = client.CoreV1Api(api)
    name = f"t-invalid-{uuid.uuid4().hex[:8]}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=RESTRICTED))
    )
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def test_the_table_is_wide_enough() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)
    assert {case.kind for case in CASES} == set(PLURALS)
    assert sum(case.update for case in CASES) >= 3


@pytest.mark.parametrize("kind", sorted(VALID))
def test_the_valid_objects_are_accepted(api: client.ApiClient, invalid_ns: str, kind: str) -> None:
    """Each case breaks exactly one thing: without it the object is accepted (dry run)."""
    body = Case("valid", kind, "nothing", {}, "").body(f"valid-{kind.lower()}")
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, invalid_ns, PLURALS[kind], body, field_validation="Strict", dry_run="All"
    )


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_invalid_resource_is_rejected_naming_the_field(
    api: client.ApiClient, invalid_ns: str, case: Case
) -> None:
    answer = rejection(api, invalid_ns, case)
    assert isinstance(answer, client.ApiException), f"accepted: {answer}"
    assert answer.status in {400, 422}, answer.body
    message = server_message(answer)
    assert case.message in message, message


def render() -> str:
    """docs/invalid-resources.md, generated from CASES."""
    lines = [
        "# Invalid resources the API server rejects",
        "",
        "<!-- Generated from tests/cluster/test_invalid_resources.py by",
        "     `python -m tests.cluster.test_invalid_resources > docs/invalid-resources.md`.",
        "     Do not edit: tests/unit/test_invalid_resources_doc.py fails when this is stale. -->",
        "",
        "Every row is a test case on the real cluster: a valid resource with one thing broken is",
        "sent to the API server (a create with server-side field validation `Strict`, or a merge",
        "patch of an object created valid), and the answer must be an error (HTTP 422, or 400 for",
        "unknown fields) whose message contains the text in the last column. The operator never",
        'sees these objects. The server\'s message begins with `<Kind>.continuum.dev "<name>" is',
        "invalid: ` (`strict decoding error: ` for unknown fields) and may go on after the text",
        "shown: a list of allowed values, the pattern, or, after a schema error, `some validation",
        "rules were not checked because the object was invalid`. A cross-field rule (CEL) is",
        'reported on the object that holds it (`spec: Invalid value: "object": …`; `<nil>` is',
        "the root) and its message names the fields. The rules behind these rows are summarised",
        "in [api.md](api.md#what-the-api-server-rejects).",
        "",
        "Unknown fields are refused only with `Strict` field validation (`kubectl apply",
        "--validate=strict`, kubectl's default, or `fieldValidation=Strict` on the API call); with",
        "`Ignore` the API server prunes them silently and with `Warn` it returns a warning.",
        "",
        "| # | Kind | What is wrong | Change to a valid object | Server's message |",
        "|---|---|---|---|---|",
    ]
    for number, case in enumerate(CASES, 1):
        message = case.message.replace("|", "\\|")
        lines.append(f"| {number} | {case.kind} | {case.wrong} | {case.change()} | `{message}` |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
