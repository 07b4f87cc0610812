"""One in-memory stand-in for ``continuum.kube.Kube``, for the controllers' unit tests.

It keeps objects by (plural, namespace, name) and behaves as the API server does where the
controllers rely on it: ``resourceVersion`` moves on every write and a status write guarded by
a stale one is refused with a 409, creating a taken name returns the existing object, uids are
assigned on create. Faults are injected per method (``fail``) and status conflicts by count
(``conflicts``); every call is recorded (``calls``) so a test can count reads and writes.

The real API server is exercised by the cluster tests; this only replaces it where a unit test
checks the controllers' own logic.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping
from typing import Any

from continuum.kube import PodTermination, ResourceConflict

PLURALS = {
    "Job": "jobs",
    "Deployment": "deployments",
    "Service": "services",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "TrainingJob": "trainingjobs",
    "ModelDeployment": "modeldeployments",
    "DriftMonitor": "driftmonitors",
}
Key = tuple[str, str, str]


class FakeKube:
    """The ``Kube`` surface the controllers use, over a dict of objects (see the module)."""

    def __init__(self, *objects: Mapping[str, Any]) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.terminations: dict[str, str | None] = {}  # by Job name
        self.images: dict[str, tuple[str, str]] = {}  # by Job name: the pod's image, imageID
        self.calls: list[str] = []
        self.written: list[tuple[str, dict[str, Any]]] = []  # (plural, status) of each write
        self.conflicts = 0  # the next N status writes are refused (someone else wrote first)
        self._faults: dict[str, list[Exception]] = {}
        self._serial = 0
        for obj in objects:
            self.put(obj)

    # -- the test's side ---------------------------------------------------------------------
    def put(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store a copy of ``obj`` as it is (a test's arrangement; no uid or version added)."""
        stored = copy.deepcopy(dict(obj))
        self.objects[_key(stored)] = stored
        return stored

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object itself (not a copy), or None."""
        return self.objects.get((plural, namespace, name))

    def of(self, plural: str) -> list[dict[str, Any]]:
        """Every stored object of ``plural``, in insertion order."""
        return [obj for (kind, _ns, _n), obj in self.objects.items() if kind == plural]

    def statuses(self, plural: str) -> list[dict[str, Any]]:
        """The statuses written to objects of ``plural``, oldest first."""
        return [status for kind, status in self.written if kind == plural]

    def fail(self, method: str, *errors: Exception) -> None:
        """The next calls of ``method`` raise ``errors``, one per call, in order."""
        self._faults.setdefault(method, []).extend(errors)

    def count(self, method: str) -> int:
        """How many times ``method`` was called (``apply Kind`` for applies)."""
        return Counter(self.calls)[method]

    def delete(self, plural: str, namespace: str, name: str) -> None:
        self.objects.pop((plural, namespace, name), None)

    # -- the Kube surface --------------------------------------------------------------------
    async def read_custom_object(
        self, _group: str, _version: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        self._call("read_custom_object")
        return copy.deepcopy(self.get(plural, namespace, name))

    async def list_custom_objects(
        self, _group: str, _version: str, plural: str, namespace: str
    ) -> list[dict[str, Any]]:
        self._call("list_custom_objects")
        return [copy.deepcopy(o) for o in self.of(plural) if _namespace(o) == namespace]

    async def create_custom_object(
        self, _group: str, _version: str, _plural: str, body: Mapping[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        self._call("create_custom_object")
        return self._create(body)

    async def patch_status(
        self,
        _group: str,
        _version: str,
        plural: str,
        namespace: str,
        name: str,
        *,
        status: Mapping[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        self._call("patch_status")
        obj = self.get(plural, namespace, name)
        assert obj is not None, f"status write to missing {plural} {namespace}/{name}"
        if self.conflicts:
            self.conflicts -= 1
            self._bump(obj)
            raise ResourceConflict("the object changed meanwhile", status=409)
        if resource_version is not None and resource_version != _version_of(obj):
            raise ResourceConflict("stale resourceVersion", status=409)
        obj["status"] = apply_merge_patch(obj.get("status"), copy.deepcopy(dict(status)))
        self.written.append((plural, copy.deepcopy(obj["status"])))
        self._bump(obj)
        return copy.deepcopy(obj)

    async def create_job(self, job: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        self._call("create_job")
        return self._create(job)

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._call("read_job")
        return copy.deepcopy(self.get("jobs", namespace, name))

    async def list_jobs(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        self._call("list_jobs")
        wanted = dict(term.split("=", 1) for term in label_selector.split(",") if term)
        jobs = [o for o in self.of("jobs") if _namespace(o) == namespace]
        return [copy.deepcopy(job) for job in jobs if _matches(job, wanted)]

    async def read_pod_termination_message(
        self, _namespace: str, job: Mapping[str, Any], _container: str
    ) -> str | None:
        self._call("read_pod_termination_message")
        return self.terminations.get(str(job["metadata"]["name"]))

    async def read_pod_termination(
        self, _namespace: str, job: Mapping[str, Any], _container: str
    ) -> PodTermination | None:
        self._call("read_pod_termination")
        name = str(job["metadata"]["name"])
        if name not in self.terminations and name not in self.images:
            return None
        image, image_id = self.images.get(name, (None, None))
        return PodTermination(self.terminations.get(name), image, image_id)

    async def read_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._call("read_deployment")
        return copy.deepcopy(self.get("deployments", namespace, name))

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        self._call("apply", f"apply {manifest['kind']}")
        key = _key(manifest)
        old = self.objects.get(key, {})
        applied = {**copy.deepcopy(dict(manifest)), "status": old.get("status", {})}
        self.objects[key] = applied
        self._bump(applied)
        return copy.deepcopy(applied)

    # -- inside ------------------------------------------------------------------------------
    def _call(self, method: str, record: str | None = None) -> None:
        """Record the call (as ``record`` when given) and raise the fault injected for it."""
        self.calls.append(record or method)
        faults = self._faults.get(method)
        if faults:
            raise faults.pop(0)

    def _create(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        key = _key(body)
        if key in self.objects:
            return copy.deepcopy(self.objects[key]), False
        created = copy.deepcopy(dict(body))
        self._serial += 1
        created["metadata"].setdefault("uid", f"{key[2]}-uid-{self._serial}")
        self.objects[key] = created
        self._bump(created)
        return copy.deepcopy(created), True

    def _bump(self, obj: dict[str, Any]) -> None:
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(int(meta.get("resourceVersion") or 0) + 1)


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch: objects merge key by key, null
    removes a key, anything else (lists too) replaces."""
    if not isinstance(patch, Mapping):
        return patch
    merged = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = apply_merge_patch(merged.get(key), value)
    return merged


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return (PLURALS[str(obj["kind"])], str(meta.get("namespace")), str(meta["name"]))


def _namespace(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("namespace"))


def _version_of(obj: Mapping[str, Any]) -> str | None:
    version = obj.get("metadata", {}).get("resourceVersion")
    return None if version is None else str(version)


def _matches(obj: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in wanted.items())
