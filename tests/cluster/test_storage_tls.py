"""An https S3 endpoint with a self-signed CA: trusted through spec.storage.caBundle, or refused.

The test starts its own MinIO on the node address with TLS (a CA and a server certificate for
IP 172.31.250.1, made here with the openssl CLI), on a free port, with its own data directory
and the credentials of the cluster's MinIO, so the Secret the cluster tests already copy works.
Pods reach it on the node address like the cluster's MinIO (the host guard only confines
forwarded traffic; pod-to-node traffic is local delivery). Under the real operator:

(a) a TrainingJob whose caBundle comes from a Secret succeeds, and its model is in the TLS MinIO;
(b) the same TrainingJob without caBundle fails, saying the certificate of that endpoint was not
    trusted and that spec.storage.caBundle is the fix (reason CertificateNotTrusted);
(c) a ModelDeployment whose caBundle comes from a ConfigMap serves (a)'s model and writes its
    inference log to the TLS MinIO.
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from kubernetes import client

from tests.kit.cluster import Operator, S3Settings, pod_logs, wait_until
from tests.kit.datasets import dataset_csv
from tests.kit.kinds import (
    GROUP,
    VERSION,
    conditions,
    create_tj,
    finished,
    model_deployment,
    predict_in_cluster,
    serving,
    training_job,
)
from tests.kit.minio import private_minio

NODE_IP = "172.31.250.1"
BUCKET = "continuum-tls"
DATASET_KEY = "datasets/churn.csv"
CA_KEY = "ca.crt"


@dataclass(frozen=True)
class TlsMinio:
    """A MinIO serving https on the node address, and the CA that signed its certificate."""

    endpoint: str
    ca_pem: str
    ca_file: Path
    access_key: str
    secret_key: str = ""

    def client(self) -> Any:
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", verify=str(self.ca_file),
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
        )  # fmt: skip


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(out: Path) -> Path:
    """A throwaway CA, and a server certificate it signed for the node IP, in MinIO's layout:
    ``out/certs/public.crt`` and ``out/certs/private.key``. Returns the CA certificate."""
    certs = out / "certs"
    certs.mkdir()
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=continuum test CA", "-keyout", "ca.key", "-out", CA_KEY,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=out,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={NODE_IP}",
        "-keyout", "certs/private.key", "-out", "server.csr", cwd=out,
    )  # fmt: skip
    (out / "server.ext").write_text(
        f"subjectAltName=IP:{NODE_IP}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", CA_KEY, "-CAkey", "ca.key",
        "-set_serial", f"0x{secrets.token_hex(8)}", "-days", "1",
        "-extfile", "server.ext", "-out", "certs/public.crt", cwd=out,
    )  # fmt: skip
    return out / CA_KEY


@pytest.fixture
def tls_minio(s3: S3Settings) -> Iterator[TlsMinio]:
    """A second MinIO, https only, on a free port of the node address; stopped afterwards."""
    work = Path(tempfile.mkdtemp(prefix="continuum-tls-minio-"))
    ca_file = make_certificates(work)
    env = {"MINIO_ROOT_USER": s3.access_key, "MINIO_ROOT_PASSWORD": s3.secret_key}
    args = ["--certs-dir", str(work / "certs")]
    with private_minio(work, host=NODE_IP, env=env, args=args, ca_file=ca_file) as endpoint:
        yield TlsMinio(endpoint, ca_file.read_text(), ca_file, s3.access_key, s3.secret_key)


def tls_training_job(name: str, minio: TlsMinio, secret: str, **storage: Any) -> dict[str, Any]:
    s3 = S3Settings(endpoint_url=minio.endpoint, in_cluster_endpoint_url=minio.endpoint,
                    access_key=minio.access_key, secret_key=minio.secret_key)  # fmt: skip
    body = training_job(name, f"s3://{BUCKET}/{DATASET_KEY}", s3, BUCKET, secret)
    body["spec"]["storage"].update(storage)
    return body


def test_https_endpoint_trusted_through_ca_bundle_or_refused(
    api: client.ApiClient,
    namespace: str,
    s3_secret: str,
    s3: S3Settings,
    tls_minio: TlsMinio,
    operator: Operator,
) -> None:
    store = tls_minio.client()
    store.create_bucket(Bucket=BUCKET)
    store.put_object(Bucket=BUCKET, Key=DATASET_KEY, Body=dataset_csv())
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="s3-ca"), string_data={CA_KEY: tls_minio.ca_pem},
    ))  # fmt: skip
    trusted = tls_training_job(
        "trusted", tls_minio, s3_secret, caBundle={"secretKeyRef": {"name": "s3-ca", "key": CA_KEY}}
    )
    untrusted = tls_training_job("untrusted", tls_minio, s3_secret)
    create_tj(api, namespace, trusted)
    create_tj(api, namespace, untrusted)

    ok = finished(api, namespace, "trusted", operator)
    assert ok["status"]["phase"] == "Succeeded", (ok["status"], _logs(api, namespace, "trusted"))
    version = ok["status"]["model"]["version"]
    keys = {o["Key"] for o in store.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert f"models/churn/{version}/manifest.json" in keys, keys
    _assert_bundle_mounted(api, namespace, "continuum.dev/training-job=trusted", "secret")

    refused = finished(api, namespace, "untrusted", operator)["status"]
    print("untrusted:", refused.get("message"))  # shown with -s: the message users read
    assert refused["phase"] == "Failed", refused
    stalled = conditions({"status": refused})["Stalled"]
    assert stalled["reason"] == "CertificateNotTrusted", stalled
    for text in (refused["message"], stalled["message"]):
        assert "certificate was not trusted" in text, text
        assert tls_minio.endpoint in text, text
        assert "spec.storage.caBundle" in text, text

    serve_with_ca_from_config_map(api, namespace, operator, (s3, tls_minio, s3_secret), version)


def serve_with_ca_from_config_map(
    api: client.ApiClient,
    namespace: str,
    op: Operator,
    setup: tuple[S3Settings, TlsMinio, str],
    version: int,
) -> None:
    """(c): the model server loads the model over TLS and writes its inference log there."""
    s3, minio, secret = setup
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="corp-ca"), data={"bundle.pem": minio.ca_pem},
    ))  # fmt: skip
    storage = {
        "endpoint": minio.endpoint,
        "bucket": BUCKET,
        "pathStyle": True,
        "secretRef": {"name": secret},
        "caBundle": {"configMapKeyRef": {"name": "corp-ca", "key": "bundle.pem"}},
    }
    # a loaded machine may need more than the module's 30 s to start a server
    body = model_deployment(s3, BUCKET, secret, storage=storage, rolloutDeadlineSeconds=180)
    body["spec"]["inferenceLog"] = {"enabled": True, "flushRows": 1, "flushSeconds": 1}
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", body
    )
    serving(api, namespace, op, version)
    _assert_bundle_mounted(api, namespace, "app.kubernetes.io/name=continuum-server", "configMap")
    answer = predict_in_cluster(api, namespace, "predict-tls")
    assert len(answer["predictions"]) == 3, answer
    store = minio.client()

    def logged() -> bool:
        listed = store.list_objects_v2(Bucket=BUCKET, Prefix=f"inference-logs/churn/{version}/")
        return bool(listed.get("Contents"))

    wait_until("the inference log in the TLS MinIO", logged, timeout=60, every=2)


def _assert_bundle_mounted(api: client.ApiClient, namespace: str, selector: str, kind: str) -> None:
    """The pod has the CA volume of ``kind`` (secret/configMap), mounted read-only."""
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items
    assert pods, selector
    pod = api.sanitize_for_serialization(pods[0])
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert kind in volumes["s3-ca-bundle"], volumes
    (mount,) = [m for m in pod["spec"]["containers"][0]["volumeMounts"]
                if m["name"] == "s3-ca-bundle"]  # fmt: skip
    assert mount["readOnly"] is True
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["AWS_CA_BUNDLE"] == f"{mount['mountPath']}/ca-bundle.pem"


def _logs(api: client.ApiClient, namespace: str, name: str) -> str:
    return pod_logs(api, namespace, f"continuum.dev/training-job={name}")
