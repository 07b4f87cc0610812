#!/usr/bin/env bash
# `make demo`: the whole Continuum loop on the local cluster, on an embedded default dataset.
#
#   cluster-up (or reuse it) -> project image -> MinIO credentials -> the operator IN the cluster
#   (Helm chart, namespace continuum-system, watching only continuum-demo) -> hack/demo/loop.py:
#   seeded dataset -> examples/trainingjob.yaml (v1) -> examples/modeldeployment.yaml (serve) ->
#   in-distribution traffic -> examples/driftmonitor.yaml (NoDrift) -> shifted traffic ->
#   DriftDetected -> retraining -> v2 qualified and promoted -> lineage, report, where to look.
#
# Idempotent: every run wipes the demo namespace's objects and the demo bucket first, so each run
# tells the whole story again; the cluster stays up until `make cluster-down`.
source "$(dirname "$0")/lib.sh"
source "$HACK_DIR/cluster/config.sh"
export T0
NS=continuum-demo
SYSTEM_NS=continuum-system
RELEASE=continuum
OUT_DIR=${DEMO_OUT:-/tmp/continuum-demo}
KUBECTL="$CACHE_DIR/kube-$KUBE_VERSION/bin/kubectl"
HELM="${CONTINUUM_HELM:-$CACHE_DIR/helm-v$HELM_VERSION-k1.$HELM_K8S_MINOR/bin/helm}"
VENV_PY="$REPO_DIR/.venv/bin/python"

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_OUT" "$@"; }
helm_() { "$HELM" --kubeconfig "$KUBECONFIG_OUT" "$@"; }

prepare_namespace() {
  kc create namespace "$NS" --dry-run=client -o yaml | kc apply -f - >/dev/null
  kc label namespace "$NS" --overwrite >/dev/null \
    pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest
  log "namespace $NS enforces the restricted Pod Security Standard"
}

operator_diagnostics() {
  kc -n "$SYSTEM_NS" get deploy,pods -l "app.kubernetes.io/instance=$RELEASE" -o wide >&2 || true
  kc -n "$SYSTEM_NS" describe pods -l "app.kubernetes.io/instance=$RELEASE" 2>&1 | tail -n 30 >&2 || true
  kc -n "$SYSTEM_NS" logs "deployment/$RELEASE" --tail=40 >&2 || true
}

install_operator() {
  local image=$1 repo=${1%%:*} tag=${1##*:}
  # --take-ownership: the CRDs may already exist (applied with kubectl from crds/, or adopted by
  # another release); the chart adopts and upgrades them, and keeps them on uninstall.
  if ! helm_ upgrade --install "$RELEASE" "$REPO_DIR/charts/continuum" \
      --namespace "$SYSTEM_NS" --take-ownership --wait --timeout 180s \
      --set "image.repository=$repo,image.tag=$tag" \
      --set "watchNamespaces={$NS}" \
      --set "crds.enabled=true,crds.keep=true" >"$OUT_DIR/helm-notes.txt" 2>&1; then
    cat "$OUT_DIR/helm-notes.txt" >&2
    operator_diagnostics
    die "helm upgrade --install of the chart did not finish (output and operator pod above)"
  fi
  # An unchanged release does not restart the pod; make sure the operator that reconciles the
  # demo is Ready now (and was not left without its Role by an earlier run).
  kc -n "$SYSTEM_NS" rollout status "deployment/$RELEASE" --timeout=120s >/dev/null \
    || { operator_diagnostics; die "the operator Deployment $SYSTEM_NS/$RELEASE did not become Ready"; }
  kc wait --for=condition=Established --timeout=60s \
    crd/trainingjobs.continuum.dev crd/modeldeployments.continuum.dev crd/driftmonitors.continuum.dev >/dev/null \
    || die "the continuum.dev CRDs are not Established"
  local pod; pod=$(kc -n "$SYSTEM_NS" get pods -l "app.kubernetes.io/instance=$RELEASE" \
    -o jsonpath='{.items[0].metadata.name}')
  local revision; revision=$(helm_ -n "$SYSTEM_NS" status "$RELEASE" -o json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
  log "operator pod $SYSTEM_NS/$pod is Ready (Helm release $RELEASE, revision $revision)"
  log "mode: namespaced, watching only $NS, under ServiceAccount $SYSTEM_NS/$RELEASE"
}

main() {
  mkdir -p "$OUT_DIR"
  "$HACK_DIR/cluster-up.sh"
  step "Building the project image and loading it into the cluster"
  "$HACK_DIR/image.sh"
  local image; image="continuum:$(python3 -c 'import tomllib;print(tomllib.load(open("'"$REPO_DIR"'/pyproject.toml","rb"))["project"]["version"])')"
  [ -x "$VENV_PY" ] || die "no project virtualenv at $REPO_DIR/.venv: run \`make setup\` (make demo does it)"
  if [ ! -x "$HELM" ]; then
    log "waiting for the helm binary $HELM (being built by hack/build-tools.sh?)"
    local waited=0
    until [ -x "$HELM" ]; do
      sleep 10; waited=$((waited + 10))
      (( waited < 900 )) || die "no helm binary at $HELM: run \`make tools\`"
    done
  fi

  step "Installing the operator in the cluster with Helm (charts/continuum, namespace $SYSTEM_NS)"
  prepare_namespace
  install_operator "$image"

  KUBECTL="$KUBECTL" KUBECONFIG="$KUBECONFIG_OUT" CONTINUUM_STATE="$STATE_DIR" DEMO_NS="$NS" \
    SYSTEM_NS="$SYSTEM_NS" RELEASE="$RELEASE" IMAGE="$image" DEMO_OUT="$OUT_DIR" \
    "$VENV_PY" "$HACK_DIR/demo/loop.py" || die "the demo stopped (see the error above)"
}

main "$@"
