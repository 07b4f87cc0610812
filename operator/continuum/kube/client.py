"""An async gateway over the Kubernetes API (``kubernetes.aio``): dicts in, dicts out.

Objects are plain JSON dicts, as the API server sends them: no generated models, so callers
build manifests as dicts and kopf can work with the same values. Failures become
``continuum.kube.errors`` exceptions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from kubernetes.aio import client, config

from continuum.kube.errors import Conflict, NotFound, error_for
from continuum.kube.pods import termination_message

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: server-side apply takes it as is
FIELD_MANAGER = "continuum-operator"
TIMEOUT = 30.0


class Kube:
    """The operator's connection to the API server."""

    def __init__(self, api: client.ApiClient, *, timeout: float = TIMEOUT) -> None:
        self._api = api
        self._timeout = timeout

    @classmethod
    async def connect(cls, kubeconfig: str | None = None) -> Kube:
        """Connect in-cluster (service account), else with ``kubeconfig`` / ``$KUBECONFIG``."""
        configuration = client.Configuration()
        path = kubeconfig or os.environ.get("KUBECONFIG")
        if path is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path, client_configuration=configuration
            )
        return cls(client.ApiClient(configuration))

    async def close(self) -> None:
        await self._api.close()  # type: ignore[no-untyped-call]

    async def create_job(self, job: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create ``job``; if its name is taken, return the existing one. (job, created?)"""
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        path = f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs"
        try:
            created = await self._request("POST", path, f"create Job {namespace}/{name}", job)
        except Conflict:
            existing = await self.read_job(namespace, name)
            if existing is None:  # deleted between the two calls: let the caller retry
                raise
            return existing, False
        return created, True

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Job, or None if it does not exist."""
        path = f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs/{_q(name)}"
        return await self._read(path, f"read Job {namespace}/{name}")

    async def list_jobs(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        """batch/v1 Jobs in ``namespace`` matching ``label_selector``."""
        path = f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs"
        query = [("labelSelector", label_selector)]
        found = await self._request("GET", path, f"list Jobs in {namespace}", query=query)
        return list(found.get("items") or [])

    async def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        """Pods in ``namespace`` matching ``label_selector``."""
        path = f"/api/v1/namespaces/{_q(namespace)}/pods"
        query = [("labelSelector", label_selector)]
        found = await self._request("GET", path, f"list pods in {namespace}", query=query)
        return list(found.get("items") or [])

    async def read_pod_termination_message(
        self, namespace: str, job: Mapping[str, Any], container: str
    ) -> str | None:
        """The termination message ``container`` left in the last finished pod of ``job``."""
        uid = job.get("metadata", {}).get("uid")
        name = job["metadata"]["name"]
        selector = (
            f"batch.kubernetes.io/controller-uid={uid}"
            if uid
            else f"batch.kubernetes.io/job-name={name}"
        )
        return termination_message(await self.list_pods(namespace, selector), container)

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply ``manifest`` (a Deployment, Service or HPA): create or update it.

        The operator's field manager owns every field it sets (``force``); fields it no longer
        sets are removed, fields others set are kept. Unchanged objects are not rewritten.
        """
        meta = manifest["metadata"]
        path = _object_path(manifest["apiVersion"], manifest["kind"], meta["namespace"])
        path = f"{path}/{_q(meta['name'])}"
        what = f"apply {manifest['kind']} {meta['namespace']}/{meta['name']}"
        query = [("force", "true")]
        return await self._request(
            "PATCH", path, what, manifest, query=query, content_type=APPLY_PATCH
        )

    async def read_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The apps/v1 Deployment, or None if it does not exist."""
        path = f"{_object_path('apps/v1', 'Deployment', namespace)}/{_q(name)}"
        return await self._read(path, f"read Deployment {namespace}/{name}")

    async def list_custom_objects(
        self, group: str, version: str, plural: str, namespace: str
    ) -> list[dict[str, Any]]:
        """Every namespaced custom object of ``plural`` in ``namespace``."""
        path = f"/apis/{group}/{version}/namespaces/{_q(namespace)}/{plural}"
        found = await self._request("GET", path, f"list {plural}.{group} in {namespace}")
        return list(found.get("items") or [])

    async def create_custom_object(
        self, group: str, version: str, plural: str, body: Mapping[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Create a namespaced custom object; if its name is taken, the existing one.

        Returns (object, created?), like ``create_job``.
        """
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        path = f"/apis/{group}/{version}/namespaces/{_q(namespace)}/{plural}"
        try:
            created = await self._request("POST", path, f"create {plural}.{group} {name}", body)
        except Conflict:
            existing = await self.read_custom_object(group, version, plural, namespace, name)
            if existing is None:  # deleted between the two calls: let the caller retry
                raise
            return existing, False
        return created, True

    async def read_custom_object(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        """A namespaced custom object, or None if it does not exist."""
        path = _custom_path(group, version, plural, namespace, name)
        return await self._read(path, f"read {plural}.{group} {namespace}/{name}")

    async def patch_status(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str,
        name: str,
        *,
        status: Mapping[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch ``status`` onto the object's status subresource.

        With ``resource_version`` the write only happens if the object is unchanged since
        that version (else ``Conflict``): optimistic concurrency for read-compute-write.
        """
        body: dict[str, Any] = {"status": dict(status)}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        path = _custom_path(group, version, plural, namespace, name) + "/status"
        what = f"patch status of {plural}.{group} {namespace}/{name}"
        return await self._request("PATCH", path, what, body, content_type=MERGE_PATCH)

    async def _read(self, path: str, what: str) -> dict[str, Any] | None:
        try:
            return await self._request("GET", path, what)
        except NotFound:
            return None

    async def _request(
        self,
        method: str,
        path: str,
        what: str,
        body: Mapping[str, Any] | None = None,
        *,
        query: list[tuple[str, str]] | None = None,
        content_type: str = JSON,
    ) -> dict[str, Any]:
        headers = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        if method in {"POST", "PATCH"}:
            query = [*(query or []), ("fieldManager", FIELD_MANAGER)]
        params = await self._api.param_serialize(
            method, path, query_params=query, header_params=headers,
            body=dict(body) if body is not None else None, auth_settings=["BearerToken"],
        )  # fmt: skip
        response = await self._api.call_api(*params, _request_timeout=self._timeout)
        data = await response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status <= 299:
            raise error_for(response.status, data, what)
        decoded = json.loads(data or b"{}")
        return decoded if isinstance(decoded, dict) else {}


PLURALS = {
    "Deployment": "deployments",
    "Service": "services",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "Job": "jobs",
}


def _object_path(api_version: str, kind: str, namespace: str) -> str:
    """The collection path of a built-in namespaced kind (``PLURALS``) in ``namespace``."""
    root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{root}/namespaces/{_q(namespace)}/{PLURALS[kind]}"


def _custom_path(group: str, version: str, plural: str, namespace: str, name: str) -> str:
    return f"/apis/{group}/{version}/namespaces/{_q(namespace)}/{plural}/{_q(name)}"


def _q(segment: str) -> str:
    return quote(segment, safe="")
