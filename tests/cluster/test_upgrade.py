"""`helm upgrade` from the previous release to this tree, all three kinds live, traffic flowing.

The previous release is the commit PREVIOUS_RELEASE of hack/versions.env (tests/kit/previous.py):
its tree is checked out in a git worktree, its image built by its own hack/image.sh as
``continuum:<version>-prev``, and its chart installed in namespaced mode (the operator pod
watches the test namespace only, as in test_helm.py) with the CRDs, adopted with
``--take-ownership``. On it a TrainingJob trains version 1, a ModelDeployment serves it, a
DriftMonitor checks the served traffic (a drifted check retrains with an unreachable gate, so a
retrained model is never promoted), and a client pod calls the Service the whole time
(tests/kit/traffic.py).

**Step 1, the upgrade**: ``helm upgrade --reset-then-reuse-values`` (what docs/operations.md
tells users) to this tree's chart and image, the workloads kept on the previous image
(``operator.workloadImage``, set at install), while a TrainingJob started just before is in
flight. Then:

- the CRDs are this tree's ``crds/`` (they were the previous tree's after the install);
- an old and a new operator pod never ran at the same time (polled every 0.5 s);
- whether the model servers may restart is computed, not assumed: each image's own
  ``children.desired_deployment`` renders the pod template for the live ModelDeployment (run
  inside that image); same template: the server pods keep their UIDs and restart counts; another
  template: every server pod is replaced by a rolling update;
- the TrainingJob in flight ends Succeeded with exactly one Job; the DriftMonitor checks again.

**Step 2, the workloads**: ``helm upgrade`` with ``operator.workloadImage`` back to its default
(the new image): the template changes (image) and the servers roll; a TrainingJob created then
is trained by the new trainer and promoted.

Throughout: zero failed client requests. At the end every object has converged: TrainingJobs
Succeeded and Ready with one Job each, the ModelDeployment Ready and Available on the new
version, the DriftMonitor Ready with at most one retraining, no traceback in the operator log.

CRDs are cluster-wide: from the install to the upgrade the previous release's CRDs serve every
namespace (the finally re-applies ``crds/``), and the release takes the CRDs' Helm ownership
from whoever had it, so this test must not run at the same time as test_helm.py or a test
whose objects need fields the previous CRDs lack.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.kit import REPO
from tests.kit.cluster import (
    RESTRICTED,
    S3Settings,
    operator_log,
    operator_pods,
    plain,
    pod_logs,
    pod_metrics,
    upload,
    wait_until,
)
from tests.kit.datasets import dataset_csv
from tests.kit.kinds import (
    DRIFTMONITORS,
    GROUP,
    INTERVAL,
    MD,
    MODELDEPLOYMENTS,
    ROWS,
    TERMINAL,
    VERSION,
    conditions,
    create_tj,
    drift_monitor,
    get_dm,
    get_md,
    get_tj,
    model_deployment,
    objs,
    retrain_jobs,
    training_job,
)
from tests.kit.previous import PreviousRelease, build_image, checked_out, pinned_commit
from tests.kit.traffic import Client, Counts
from tests.kit.versions import helm_binary

pytestmark = pytest.mark.serial  # it replaces the CRDs with the previous release's
CHART = REPO / "charts/continuum"
CRDS = REPO / "crds"
SERVER_SELECTOR = "app.kubernetes.io/name=continuum-server"
TRAIN_TIMEOUT = 300
ROLL_TIMEOUT = 240
HELM_TIMEOUT = "180s"
UNREACHABLE = 1.5  # an accuracy threshold no model meets: Succeeded, not qualified

# Run inside an image: the pod template its operator renders for a ModelDeployment body at a
# version with a workload image (stdin: {"body", "version", "image"}; stdout: the template).
RENDER = """
import json, sys
from continuum.api import ModelDeployment, load
from continuum.controllers.modeldeployment.children import desired_deployment
given = json.load(sys.stdin)
md = load(ModelDeployment, given["body"])
deployment = desired_deployment(md, given["version"], given["image"])
print(json.dumps(deployment["spec"]["template"], sort_keys=True))
"""

Helm = Callable[..., subprocess.CompletedProcess[str]]


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def helm(kubeconfig: Path) -> Helm:
    """Run helm against the local cluster; fail with helm's output."""
    binary = helm_binary()
    if binary is None:
        pytest.fail("no helm binary: run `make tools` (or set CONTINUUM_HELM)")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [binary, "--kubeconfig", str(kubeconfig), *args],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    return run


@pytest.fixture(scope="module")
def previous(
    tmp_path_factory: pytest.TempPathFactory, project_image: str
) -> Iterator[PreviousRelease]:
    """The previous release's tree, its image built and loaded into the cluster (after this
    tree's, so the two share docker's cached dependency layer)."""
    with checked_out(pinned_commit(), tmp_path_factory.mktemp("previous")) as release:
        started = time.monotonic()
        build_image(release)
        print(f"previous release {release.commit[:12]}: {release.image} in "
              f"{time.monotonic() - started:.0f} s")  # fmt: skip
        yield release


@pytest.fixture
def system(api: client.ApiClient) -> Iterator[str]:
    """The release's namespace (restricted Pod Security): the operator pods run here."""
    core = client.CoreV1Api(api)
    name = f"upg-sys-{uuid.uuid4().hex[:8]}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=RESTRICTED))
    )
    yield name
    core.delete_namespace(name, propagation_policy="Background")


# ---------------------------------------------------------------------------- the release


@dataclass
class Release:
    """One Helm release of the chart in namespaced mode (it watches ``team``)."""

    api: client.ApiClient
    helm: Helm
    name: str
    system: str
    team: str

    def install(self, chart: Path, *sets: str) -> None:
        self.helm(
            "install", self.name, str(chart), "--namespace", self.system, "--take-ownership",
            "--wait", "--timeout", HELM_TIMEOUT, *(f"--set={s}" for s in sets),
        )  # fmt: skip

    def upgrade(self, chart: Path, *sets: str) -> None:
        self.helm(
            "upgrade", self.name, str(chart), "--namespace", self.system,
            "--reset-then-reuse-values", "--wait", "--timeout", HELM_TIMEOUT,
            *(f"--set={s}" for s in sets),
        )  # fmt: skip

    def uninstall(self) -> None:
        self.helm("uninstall", self.name, "--namespace", self.system, "--ignore-not-found",
                  "--wait", "--timeout", "120s")  # fmt: skip

    def pods(self) -> list[dict[str, Any]]:
        return operator_pods(self.api, self.system, self.name)

    def log(self) -> str:
        return operator_log(self.api, self.system, self.name)

    def images(self) -> set[str]:
        """The images of the operator pods (not terminating)."""
        return {p["spec"]["containers"][0]["image"] for p in self.pods()}

    def workload_image(self) -> str:
        """CONTINUUM_IMAGE of the operator Deployment: the image its workloads run."""
        apps = client.AppsV1Api(self.api)
        deployment = plain(
            self.api, apps.read_namespaced_deployment(f"{self.name}-continuum", self.system)
        )
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        return next(str(e["value"]) for e in container["env"] if e["name"] == "CONTINUUM_IMAGE")

    def reconciled(self, kind: str) -> bool:
        """Whether a running operator pod has reconciled an object of ``kind`` successfully."""
        runs = errors = 0.0
        for pod in self.pods():
            text = pod_metrics(self.api, pod)
            runs += metric_sum(text, "continuum_reconciles_total", kind)
            errors += metric_sum(text, "continuum_reconcile_errors_total", kind)
        return runs > errors


def metric_sum(text: str, name: str, kind: str) -> float:
    """The sum of the samples of ``name`` whose kind label is ``kind``."""
    pattern = re.compile(rf'^{name}\{{[^}}]*kind="{kind}"[^}}]*\}} (\S+)$', re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))


@dataclass
class OperatorWatch:
    """Polls the release's operator pods; remembers every moment a pod of ``old`` ran beside a
    pod of another image (two operators reconciling at once)."""

    api: client.ApiClient
    system: str
    old: str
    overlaps: list[str] = field(default_factory=list)
    last_old: float | None = None  # monotonic time of the last sample an old pod ran in
    first_new: float | None = None  # ... and of the first one a new pod ran in
    stopped: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def __enter__(self) -> OperatorWatch:
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        assert self.thread is not None
        self.thread.join(timeout=30)

    def _poll(self) -> None:
        core = client.CoreV1Api(self.api)
        while not self.stopped.wait(0.5):
            pods = core.list_namespaced_pod(self.system).items
            running = {(p.metadata.name, p.spec.containers[0].image) for p in pods if _running(p)}
            images = {image for _, image in running}
            if self.old in images and len(images) > 1:
                self.overlaps.append(f"{datetime.now(UTC):%H:%M:%S.%f}: {sorted(running)}")
            if self.old in images:
                self.last_old = time.monotonic()
            elif images and self.first_new is None:
                self.first_new = time.monotonic()

    def gap(self) -> float | None:
        """Seconds between the last old operator seen running and the first new one."""
        if self.last_old is None or self.first_new is None:
            return None
        return self.first_new - self.last_old


def _running(pod: client.V1Pod) -> bool:
    statuses = pod.status.container_statuses or []
    return any(s.state is not None and s.state.running is not None for s in statuses)


# ---------------------------------------------------------------------------- the workload


@dataclass(frozen=True)
class World:
    """The test namespace, its bucket, Secret and dataset, and the clients of its objects."""

    api: client.ApiClient
    team: str
    s3: S3Settings
    bucket: str
    secret: str
    data: str

    def training_job(self, name: str, *, qualified: bool = True) -> dict[str, Any]:
        body = training_job(name, self.data, self.s3, self.bucket, self.secret,
                            endpoint=self.s3.in_cluster_endpoint_url)  # fmt: skip
        if not qualified:
            body["spec"]["evaluation"]["threshold"] = UNREACHABLE
        return body

    def start_training(self, name: str, *, qualified: bool = True) -> None:
        create_tj(self.api, self.team, self.training_job(name, qualified=qualified))

    def trained(self, name: str) -> dict[str, Any]:
        """Wait for the TrainingJob to finish; it must have Succeeded."""

        def done() -> dict[str, Any] | None:
            tj = get_tj(self.api, self.team, name)
            return tj if tj.get("status", {}).get("phase") in TERMINAL else None

        tj: dict[str, Any] = wait_until(f"TrainingJob {name} to finish", done, TRAIN_TIMEOUT, 2)
        assert tj["status"]["phase"] == "Succeeded", tj["status"]
        return tj

    def serving(self, version: int) -> dict[str, Any]:
        """Wait until the ModelDeployment serves ``version``, Ready, Available, rolled out."""

        def check() -> dict[str, Any] | None:
            md = get_md(self.api, self.team)
            cond = {t: c["status"] for t, c in conditions(md).items()}
            settled = (cond.get("Ready"), cond.get("Available"), cond.get("Progressing"))
            served = md.get("status", {}).get("servingVersion") == version
            return md if served and settled == ("True", "True", "False") else None

        md: dict[str, Any] = wait_until(f"{MD} to serve version {version}", check, ROLL_TIMEOUT, 2)
        return md

    def monitor(
        self, what: str, check: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            dm = get_dm(self.api, self.team)
            return dm if check(dm) else None

        try:
            dm: dict[str, Any] = wait_until(what, probe, timeout, 2)
        except pytest.fail.Exception:  # say what the monitor showed instead (a CI flake)
            print(
                "DriftMonitor status at the timeout:",
                json.dumps(get_dm(self.api, self.team).get("status"), indent=1),
            )
            raise
        return dm

    def server_pods(self) -> dict[str, tuple[str, int, str]]:
        """The model server pods not terminating: uid -> (name, restarts, image)."""
        core = client.CoreV1Api(self.api)
        pods = core.list_namespaced_pod(self.team, label_selector=SERVER_SELECTOR).items
        return {
            p.metadata.uid: (
                p.metadata.name,
                sum(s.restart_count for s in p.status.container_statuses or []),
                p.spec.containers[0].image,
            )
            for p in pods
            if p.metadata.deletion_timestamp is None
        }

    def jobs_by_owner(self) -> dict[str, int]:
        """How many Jobs each TrainingJob owns."""
        counts: dict[str, int] = {}
        for job in client.BatchV1Api(self.api).list_namespaced_job(self.team).items:
            for ref in job.metadata.owner_references or []:
                if ref.kind == "TrainingJob":
                    counts[ref.name] = counts.get(ref.name, 0) + 1
        return counts

    def training_jobs(self) -> list[dict[str, Any]]:
        found = objs(self.api).list_namespaced_custom_object(
            GROUP, VERSION, self.team, "trainingjobs"
        )
        return list(found["items"])


def start_workload(world: World) -> None:
    """A TrainingJob of version 1, the ModelDeployment serving the model, its DriftMonitor."""
    world.start_training("upg-1")
    create = objs(world.api).create_namespaced_custom_object
    create(GROUP, VERSION, world.team, MODELDEPLOYMENTS,
           model_deployment(world.s3, world.bucket, world.secret))  # fmt: skip
    template = world.training_job("template", qualified=False)["spec"]
    create(GROUP, VERSION, world.team, DRIFTMONITORS, drift_monitor(template))


def quiesce(api: client.ApiClient, team: str) -> None:
    """Delete the workload and wait for its pods: nothing writes to the bucket while the
    fixture empties and removes it."""
    custom = objs(api)
    for plural in (DRIFTMONITORS, MODELDEPLOYMENTS, "trainingjobs"):
        custom.delete_collection_namespaced_custom_object(GROUP, VERSION, team, plural)
    client.BatchV1Api(api).delete_collection_namespaced_job(team, propagation_policy="Background")
    core = client.CoreV1Api(api)
    wait_until("the test's pods to be gone", lambda: not core.list_namespaced_pod(team).items, 180)


# ---------------------------------------------------------------------------- CRDs and templates


def crd_differences(api: client.ApiClient, folder: Path) -> list[str]:
    """Where the live CRDs differ from the YAML files in ``folder`` (empty: they are those)."""
    ext = client.ApiextensionsV1Api(api)
    found = []
    for path in sorted(folder.glob("*.yaml")):
        want = yaml.safe_load(path.read_text())
        raw = ext.read_custom_resource_definition(want["metadata"]["name"], _preload_content=False)
        live = json.loads(raw.data)
        found += [f"{path.name}: {d}" for d in spec_differences(want["spec"], live["spec"])]
    return found


def spec_differences(want: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """Every field of ``want`` that ``live`` lacks or holds another value of; versions by name,
    each compared field by field (the API server adds defaults of its own beside them)."""
    found = [key for key in ("group", "names", "scope") if want.get(key) != live.get(key)]
    versions = {v["name"]: v for v in live.get("versions", [])}
    if sorted(versions) != sorted(v["name"] for v in want["versions"]):
        found.append(f"versions {sorted(versions)}")
    for version in want["versions"]:
        have = versions.get(version["name"], {})
        found += [f"{version['name']}.{k}" for k, v in version.items() if have.get(k) != v]
    return found


def crds_established(api: client.ApiClient) -> bool:
    ext = client.ApiextensionsV1Api(api)
    names = [yaml.safe_load(p.read_text())["metadata"]["name"] for p in CRDS.glob("*.yaml")]
    crds = [plain(api, ext.read_custom_resource_definition(n)) for n in names]
    return all(
        any(
            c["type"] == "Established" and c["status"] == "True"
            for c in crd["status"]["conditions"]
        )
        for crd in crds
    )


def pod_template(image: str, md: dict[str, Any], version: int, workload: str) -> dict[str, Any]:
    """The model server pod template the operator of ``image`` renders for ``md``."""
    given = json.dumps({"body": md, "version": version, "image": workload})
    done = subprocess.run(
        ["docker", "run", "--rm", "-i", "--network", "none", "--entrypoint", "python", image,
         "-c", RENDER],
        input=given, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(
            f"rendering the model server pod template with {image} failed (its "
            f"children.desired_deployment may have changed: adapt RENDER):\n{done.stderr[-3000:]}"
        )
    return dict(json.loads(done.stdout))


def template_changes(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    """The paths where two rendered templates differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in template_changes(old.get(k), new.get(k), f"{path}.{k}")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in template_changes(a, b, f"{path}[{i}]")]  # fmt: skip
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def rolled(world: World, before: dict[str, tuple[str, int, str]], image: str) -> bool:
    """Every server pod is new, runs ``image`` and is ready; none of ``before`` is left."""
    apps = client.AppsV1Api(world.api)
    deployment = apps.read_namespaced_deployment(MD, world.team)
    status, wanted = deployment.status, deployment.spec.replicas
    pods = world.server_pods()
    core = client.CoreV1Api(world.api)
    left = core.list_namespaced_pod(world.team, label_selector=SERVER_SELECTOR).items
    return (
        not set(before) & {p.metadata.uid for p in left}
        and all(image == p[2] for p in pods.values())
        and status.updated_replicas == status.ready_replicas == status.available_replicas == wanted
        and len(pods) == wanted
    )


# ---------------------------------------------------------------------------- the test


@dataclass
class Figures:
    """What the run measured, printed at the end."""

    marks: list[tuple[str, float]] = field(default_factory=list)
    start: float = field(default_factory=time.monotonic)
    notes: list[str] = field(default_factory=list)

    def mark(self, what: str) -> None:
        self.marks.append((what, time.monotonic() - self.start))

    def report(self) -> str:
        lines = [f"  {t:6.1f} s  {what}" for what, t in self.marks]
        return "\n".join(["upgrade test:", *lines, *(f"  {n}" for n in self.notes)])


def test_upgrade_from_previous_release(
    api: client.ApiClient,
    kubectl: list[str],
    helm: Helm,
    previous: PreviousRelease,
    project_image: str,
    namespace: str,
    system: str,
    s3: S3Settings,
    s3_bucket: str,
    s3_secret: str,
) -> None:
    release = Release(api, helm, f"upg-{uuid.uuid4().hex[:6]}", system, namespace)
    data = upload(s3, s3_bucket, "datasets/churn.csv", dataset_csv())
    world = World(api, namespace, s3, s3_bucket, s3_secret, data)
    traffic = Client(api, namespace, "upg-client")
    figures = Figures()
    try:
        install_previous(release, previous, figures)
        serve_on_previous(world, traffic, project_image, figures)
        upgraded = upgrade_operator(world, release, previous, project_image, figures)
        upgrade_workloads(world, release, project_image, figures)
        # The traffic drifts, but a check on too few logged rows (a slow flush on a busy
        # machine, or a version just promoted) finds nothing yet: wait for the check that
        # retrains while the traffic still flows, then stop it.
        world.monitor("the drifted traffic's retraining",
                      lambda dm: bool(dm.get("status", {}).get("retrainings")),
                      2 * INTERVAL + 180)  # fmt: skip
        counts = traffic.stop(kubectl)
        figures.notes.append(f"client: {counts.sent} sent, {counts.ok} ok, {counts.failed} failed, "
                             f"{counts.refused} connections refused (retried)")  # fmt: skip
        check_no_failed_request(counts)
        check_converged(world, release, upgraded)
        figures.mark("converged")
    except BaseException:
        print(release.log())
        print(json.dumps(get_md(api, namespace).get("status"), indent=1, default=str))
        print(pod_logs(api, namespace, SERVER_SELECTOR)[-5000:])
        print(traffic.log()[-3000:])
        raise
    finally:
        print(figures.report())
        clean_up(release, kubectl)


def clean_up(release: Release, kubectl: list[str]) -> None:
    """This tree's CRDs back in place (whatever failed), the workload and the release gone."""
    try:
        subprocess.run([*kubectl, "apply", "-f", str(CRDS)], check=True, timeout=60,
                       capture_output=True)  # fmt: skip
    finally:
        try:
            quiesce(release.api, release.team)
        finally:
            release.uninstall()


def install_previous(release: Release, previous: PreviousRelease, figures: Figures) -> None:
    """The previous chart with the previous image; its CRDs are then the live ones."""
    release.install(
        previous.chart,
        f"watchNamespaces={{{release.team}}}",
        "crds.enabled=true,crds.keep=true",
        f"image.tag={previous.image.split(':', 1)[1]}",
        f"operator.workloadImage={previous.image}",
    )
    assert release.images() == {previous.image}
    assert crd_differences(release.api, previous.crds) == []
    changed = crd_differences(release.api, CRDS)
    figures.notes.append(f"CRDs changed since the previous release: {changed or 'none'}")
    figures.mark(f"previous release {previous.commit[:12]} installed ({previous.image})")


def serve_on_previous(world: World, traffic: Client, image: str, figures: Figures) -> None:
    """Version 1 trained and served by the previous release, the monitor running, traffic on."""
    start_workload(world)
    tj = world.trained("upg-1")
    assert tj["status"]["qualified"] is True
    assert tj["status"]["model"]["version"] == 1
    world.serving(1)
    traffic.start(image, MD, "/v1/models/churn:predict", ROWS, workers=2, pause=0.1)
    world.monitor("the DriftMonitor's first status", lambda dm: "Ready" in conditions(dm), 120)
    figures.mark("version 1 served by the previous release, client running")


@dataclass(frozen=True)
class Upgraded:
    """When the operator was upgraded, and whether that changed the server pod template."""

    at: datetime
    template_changed: bool


def upgrade_operator(
    world: World, release: Release, previous: PreviousRelease, image: str, figures: Figures
) -> Upgraded:
    """Step 1: this chart and operator image; the workloads stay on the previous image."""
    before = world.server_pods()
    template_before = deployment_template(world)
    stored_before = get_md(world.api, world.team)  # as the previous release's CRD kept it
    world.start_training("upg-inflight", qualified=False)
    at = datetime.now(UTC)
    gap = swap_operator(release, previous.image, image)
    down = "not measured" if gap is None else f"{gap:.1f} s"
    figures.mark(f"helm upgrade done (operator); no operator running for {down}")
    wait_until("the CRDs of this tree", lambda: crd_differences(world.api, CRDS) == [], 60)
    wait_until("the CRDs established", lambda: crds_established(world.api), 60)
    wait_until("the new operator to reconcile the ModelDeployment",
               lambda: release.reconciled("ModelDeployment"), 120)  # fmt: skip
    assert release.workload_image() == previous.image
    changes = template_changes(
        *rendered_templates(world, stored_before, previous.image, image, previous.image)
    )
    figures.notes.append(f"server pod template changed by the operator upgrade: {changes or 'no'}")
    inflight = world.trained("upg-inflight")
    assert inflight["status"]["qualified"] is False
    world.monitor("a check after the upgrade", lambda dm: checked_since(dm, at), INTERVAL + 180)
    figures.mark("in-flight TrainingJob finished, DriftMonitor checked again")
    check_servers(world, before, template_before, changes, previous.image)
    return Upgraded(at, bool(changes))


def swap_operator(release: Release, old: str, new: str) -> float | None:
    """helm upgrade to this chart and ``new``; never an ``old`` pod beside a ``new`` one.
    Returns how long no operator ran (None: the poll saw no old or no new pod run)."""
    with OperatorWatch(release.api, release.system, old) as watch:
        release.upgrade(CHART, f"image.tag={new.split(':', 1)[1]}")
        wait_until("only operator pods of the new image", lambda: release.images() == {new}, 120)
    assert watch.overlaps == [], f"an old and a new operator ran at once: {watch.overlaps[:5]}"
    return watch.gap()


def check_servers(
    world: World, before: dict[str, tuple[str, int, str]], template: dict[str, Any],
    changes: list[str], image: str,
) -> None:  # fmt: skip
    """Same rendered template: the same server pods, not restarted; otherwise all replaced."""
    if changes:
        wait_until("the servers to roll", lambda: rolled(world, before, image), ROLL_TIMEOUT)
    else:
        assert world.server_pods() == before, "servers restarted, yet their template is the same"
        assert deployment_template(world) == template
    world.serving(1)


def rendered_templates(
    world: World, stored_before: dict[str, Any], old_image: str, new_image: str, workload: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod templates the old operator rendered for the ModelDeployment as it was stored
    before the upgrade, and the new one renders for it now. The live object carries this tree's
    defaults (spec.rollout, status.storage) that the previous release's API types refuse."""
    md = get_md(world.api, world.team)
    version = int(md["status"]["servingVersion"])
    return pod_template(old_image, stored_before, version, workload), pod_template(
        new_image, md, version, workload
    )


def deployment_template(world: World) -> dict[str, Any]:
    apps = client.AppsV1Api(world.api)
    return dict(
        plain(world.api, apps.read_namespaced_deployment(MD, world.team))["spec"]["template"]
    )


def checked_since(dm: dict[str, Any], moment: datetime) -> bool:
    """Whether the DriftMonitor finished a check after ``moment`` and is Ready."""
    last = dm.get("status", {}).get("lastCheckTime")
    ready = conditions(dm).get("Ready", {}).get("status") == "True"
    return bool(last) and ready and datetime.fromisoformat(last.replace("Z", "+00:00")) > moment


def upgrade_workloads(world: World, release: Release, image: str, figures: Figures) -> None:
    """Step 2: the workloads move to this tree's image; a new version is trained and promoted."""
    before = world.server_pods()
    release.upgrade(CHART, "operator.workloadImage=")
    assert release.workload_image() == image
    world.start_training("upg-2")
    wait_until(
        "the servers to roll to the new image", lambda: rolled(world, before, image), ROLL_TIMEOUT
    )
    figures.mark("model servers rolled to the new image")
    tj = world.trained("upg-2")
    assert tj["status"]["qualified"] is True, tj["status"]
    world.serving(int(tj["status"]["model"]["version"]))
    figures.mark(f"version {tj['status']['model']['version']} trained by the new trainer, promoted")


def check_no_failed_request(counts: Counts) -> None:
    assert counts.failed == 0, counts.log
    assert counts.ok >= 100, f"too little traffic to say anything: {counts}"


def check_converged(world: World, release: Release, upgraded: Upgraded) -> None:
    """Every object's status is settled and true; each TrainingJob ran exactly once."""
    wait_until("every TrainingJob to finish", lambda: all(
        tj.get("status", {}).get("phase") in TERMINAL for tj in world.training_jobs()),
        TRAIN_TIMEOUT, 2)  # fmt: skip
    tjs = {tj["metadata"]["name"]: tj for tj in world.training_jobs()}
    for name, tj in tjs.items():
        status = tj.get("status", {})
        assert status.get("phase") == "Succeeded", (name, status)
        assert conditions(tj)["Ready"]["status"] == "True", (name, status)
        assert status.get("observedGeneration") == tj["metadata"]["generation"], (name, status)
    assert world.jobs_by_owner() == dict.fromkeys(tjs, 1)
    md = get_md(world.api, world.team)
    assert md["status"]["servingVersion"] == tjs["upg-2"]["status"]["model"]["version"]
    assert md["status"].get("observedGeneration") == md["metadata"]["generation"], md["status"]
    assert conditions(md).get("Degraded", {}).get("status") != "True", md["status"]
    dm = get_dm(world.api, world.team)
    assert checked_since(dm, upgraded.at), dm["status"]
    retrained = retrain_jobs(world.api, world.team)
    # the traffic (3 rows over and over) always drifts: one retraining, then the cooldown holds
    assert len(retrained) == len(dm["status"].get("retrainings", [])) == 1, dm["status"]
    assert "Traceback" not in release.log()
