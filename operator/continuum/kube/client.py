"""An async gateway over the Kubernetes API (plain ``aiohttp``): dicts in, dicts out.

Objects are plain JSON dicts, as the API server sends them: no generated models, so callers
build manifests as dicts and kopf can work with the same values. Failures become
``continuum.kube.errors`` exceptions; a 429 or 5xx one carries the ``Retry-After`` the API
server sent, and is not retried here (the controllers' work queue retries the reconcile).

One ``aiohttp`` session with a bounded connection pool (``POOL_SIZE``) serves every request of
the process: on a burst of objects, hundreds of concurrent handlers would otherwise open as
many TLS connections (a handshake each, on the operator and on the API server, and memory per
connection that the process keeps); beyond the pool, requests wait in arrival order.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import kopf

from continuum.kube.errors import KubeUnavailable, ResourceConflict, ResourceNotFound, error_for
from continuum.kube.login import login
from continuum.kube.pods import PodTermination, termination_of

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: server-side apply takes it as is
FIELD_MANAGER = "continuum-operator"
TIMEOUT = 30.0
POOL_SIZE = 32  # concurrent requests (HTTP/1.1: one per connection); see the module docstring
UNAUTHORIZED = 401


class Kube:
    """The operator's connection to the API server."""

    def __init__(
        self,
        credentials: Callable[[], kopf.ConnectionInfo] = login,
        *,
        timeout: float = TIMEOUT,
        pool_size: int = POOL_SIZE,
    ) -> None:
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._server = ""
        self._auth: dict[str, str] = {}

    @classmethod
    async def connect(cls) -> Kube:
        """Connect in-cluster (service account), else with ``$KUBECONFIG`` (see ``login``)."""
        kube = cls()
        kube._login()
        return kube

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _login(self) -> None:
        """(Re)read the credentials; the first login also opens the session.

        A later login (after a 401) only takes the new token: the server, CA and client
        certificate of a running operator do not change.
        """
        info = self._credentials()
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._pool_size, ssl=info.as_ssl_context())
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
            self._server = info.server.rstrip("/")
        self._auth = authorization(info)

    async def create_job(self, job: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create ``job``; if its name is taken, return the existing one. (job, created?)"""
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        path = f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs"
        try:
            what = f"create Job {namespace}/{name}"
            created = await self._request("POST", path, what, job)
        except ResourceConflict:
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

    async def get_pod_proxy(
        self, namespace: str, pod: str, port: int, path: str
    ) -> dict[str, Any] | None:
        """GET ``path`` of ``pod``'s ``port`` through the API server's pod proxy, as JSON (None:
        the pod answered 404). Needs ``pods/proxy get``; used for the model servers' rollout
        counters, so it works wherever the operator reaches the API server."""
        where = f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(pod)}:{port}/proxy/{path.lstrip('/')}"
        return await self._read(where, f"GET {path} of pod {namespace}/{pod} (pod proxy)")

    async def read_pod_termination_message(
        self, namespace: str, job: Mapping[str, Any], container: str
    ) -> str | None:
        """The termination message ``container`` left in the last finished pod of ``job``."""
        found = await self.read_pod_termination(namespace, job, container)
        return found.message if found is not None else None

    async def read_pod_termination(
        self, namespace: str, job: Mapping[str, Any], container: str
    ) -> PodTermination | None:
        """``container``'s termination message and image in the last finished pod of ``job``."""
        uid = job.get("metadata", {}).get("uid")
        name = job["metadata"]["name"]
        selector = (
            f"batch.kubernetes.io/controller-uid={uid}"
            if uid
            else f"batch.kubernetes.io/job-name={name}"
        )
        return termination_of(await self.list_pods(namespace, selector), container)

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

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """A Secret's data, decoded; None if the Secret does not exist.

        Only ``get`` of the one Secret (never list or watch): the operator reads the S3
        credentials a TrainingJob names when it reads that run's manifest, and keeps nothing.
        Values never reach a log line: errors name the Secret only.
        """
        path = f"/api/v1/namespaces/{_q(namespace)}/secrets/{_q(name)}"
        secret = await self._read(path, f"read Secret {namespace}/{name}")
        if secret is None:
            return None
        data = secret.get("data") or {}
        return {str(key): base64.b64decode(value) for key, value in data.items()}

    async def read_config_map_key(self, namespace: str, name: str, key: str) -> str | None:
        """One key of a ConfigMap; None if the ConfigMap or the key does not exist."""
        path = f"/api/v1/namespaces/{_q(namespace)}/configmaps/{_q(name)}"
        found = await self._read(path, f"read ConfigMap {namespace}/{name}")
        value = ((found or {}).get("data") or {}).get(key)
        return None if value is None else str(value)

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
            what = f"create {plural}.{group} {name}"
            created = await self._request("POST", path, what, body)
        except ResourceConflict:
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

    async def patch_custom_object(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str,
        name: str,
        *,
        patch: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Merge-patch a namespaced custom object (``continuum rollout``'s annotations and
        ``spec.rollout.paused``; the operator itself never writes a spec)."""
        path = _custom_path(group, version, plural, namespace, name)
        what = f"patch {plural}.{group} {namespace}/{name}"
        return await self._request("PATCH", path, what, patch, content_type=MERGE_PATCH)

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
        that version (else ``ResourceConflict``): optimistic concurrency for read-compute-write.
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
        except ResourceNotFound:
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
        if method in {"POST", "PATCH"}:
            query = [*(query or []), ("fieldManager", FIELD_MANAGER)]
        payload = json.dumps(body).encode() if body is not None else None
        headers = (
            {"Accept": JSON} if body is None else {"Accept": JSON, "Content-Type": content_type}
        )
        send = functools.partial(self._send, method, path, query, payload, headers)
        status, data, retry_after = await send()
        if status == UNAUTHORIZED:  # a rotated or expired token: log in again, once
            self._login()
            status, data, retry_after = await send()
        if not 200 <= status <= 299:
            raise error_for(status, data, what, retry_after)
        decoded = json.loads(data or b"{}")
        return decoded if isinstance(decoded, dict) else {}

    async def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None,
        payload: bytes | None,
        headers: dict[str, str],
    ) -> tuple[int, bytes, str | None]:
        """Status, body and ``Retry-After`` header of one request.

        A request that got no answer (connection refused or reset, TLS failure, a timeout)
        is ``KubeUnavailable`` like a 5xx: it may succeed later, and the work queue retries it.
        """
        if self._session is None:
            raise RuntimeError("Kube is closed (or was never connected)")
        try:
            async with self._session.request(
                method,
                self._server + path,
                params=query,
                data=payload,
                headers={**headers, **self._auth},
            ) as response:
                return response.status, await response.read(), response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise unanswered(method, path, exc) from exc


def unanswered(method: str, path: str, exc: BaseException) -> KubeUnavailable:
    """The error for a request the API server never answered (no HTTP status)."""
    cause = "timed out" if isinstance(exc, TimeoutError) else (str(exc) or type(exc).__name__)
    return KubeUnavailable(
        f"{method} {path}: no answer from the API server ({cause}); retried with backoff",
        reason=type(exc).__name__,
    )


def authorization(info: kopf.ConnectionInfo) -> dict[str, str]:
    """The Authorization header for ``info``: bearer token or basic auth (none: client cert)."""
    if info.username and info.password:
        pair = f"{info.username}:{info.password}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    if info.token:
        return {"Authorization": f"{info.scheme or 'Bearer'} {info.token}"}
    return {}


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
