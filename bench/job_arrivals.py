"""When each Job of a namespace first appears, from a process that does nothing else.

    python bench/job_arrivals.py <kubeconfig> <namespace> <owner-label>

Prints ``ready`` once it watches, then ``<owner> <seconds>`` for each new Job, where ``owner``
is the Job's ``<owner-label>`` value and ``seconds`` is CLOCK_MONOTONIC (the same clock in
every process of this machine, so the bench can subtract its own readings from it).

Why a process of its own: in the bench's process, 32 threads creating TrainingJobs and the
kubernetes client turning every watch event into model objects shared one GIL, and a Job
event could wait there long enough to add whole seconds to the latency being measured. Here
an event is read and stamped as soon as the API server sends it; parsing is plain JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes import client, config

RETRYABLE = {410, 429, 500, 502, 503, 504}


class Api:
    """Just enough of the API server for a list and a watch of Jobs, on a raw urllib3 pool."""

    def __init__(self, kubeconfig: str, namespace: str, label: str) -> None:
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        self.base = f"{cfg.host}/apis/batch/v1/namespaces/{namespace}/jobs"
        self.label = label
        self.headers = {"Accept": "application/json"}
        token = (cfg.api_key or {}).get("authorization")
        if token:
            self.headers["Authorization"] = token
        self.http = urllib3.PoolManager(
            ca_certs=cfg.ssl_ca_cert, cert_file=cfg.cert_file, key_file=cfg.key_file
        )

    def list(self) -> tuple[list[str], str]:
        reply = self.http.request("GET", self._url(), headers=self.headers)
        if reply.status != 200:
            raise OSError(f"listing Jobs answered {reply.status}")
        listed = json.loads(reply.data)
        owners = [self.owner_of(job) for job in listed["items"]]
        return owners, listed["metadata"]["resourceVersion"]

    def watch(self, resource_version: str) -> Iterator[dict[str, Any]]:
        query = {"watch": "1", "resourceVersion": resource_version, "timeoutSeconds": "60"}
        reply = self.http.request(
            "GET", self._url(query), headers=self.headers, preload_content=False
        )
        if reply.status != 200:
            raise OSError(f"watching Jobs answered {reply.status}")
        pending = b""
        for chunk in reply.stream(65536, decode_content=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield json.loads(line)

    def owner_of(self, job: dict[str, Any]) -> str:
        return str((job.get("metadata", {}).get("labels") or {}).get(self.label, ""))

    def _url(self, extra: dict[str, str] | None = None) -> str:
        query = {"labelSelector": self.label, **(extra or {})}
        return f"{self.base}?{urlencode(query)}"


def say(owner: str, seen: set[str]) -> None:
    if owner and owner not in seen:
        seen.add(owner)
        print(owner, f"{time.monotonic():.6f}", flush=True)


def follow(api: Api) -> None:
    parent = os.getppid()
    seen: set[str] = set()
    owners, version = api.list()
    seen.update(owners)  # there before the bench began: not measured
    print("ready", flush=True)
    while os.getppid() == parent:  # the bench went away: so do we (a watch lasts <= 60 s)
        try:
            version = watch_once(api, version, seen)
        except (OSError, urllib3.exceptions.HTTPError, WatchGoneError):
            time.sleep(1)  # the API server restarted or compacted: list again, go on from there
            version = relist(api, seen)


class WatchGoneError(Exception):
    """The watch's resourceVersion is too old (410): only a new list can go on."""


def watch_once(api: Api, version: str, seen: set[str]) -> str:
    for event in api.watch(version):
        if event["type"] == "ERROR":
            raise WatchGoneError(str(event["object"].get("message")))
        job = event["object"]
        version = job["metadata"].get("resourceVersion", version)
        if event["type"] == "ADDED":
            say(api.owner_of(job), seen)
    return version


def relist(api: Api, seen: set[str]) -> str:
    """Jobs not seen before count as seen now, which can only make their latency longer."""
    owners, version = api.list()
    for owner in owners:
        say(owner, seen)
    return version


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        follow(Api(*sys.argv[1:4]))
