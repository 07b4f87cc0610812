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
#
# DEMO_CLUSTER=current (or USE_CURRENT_CONTEXT=1) runs the same story on the current context of
# your kubeconfig instead: no local cluster is built or started. hack/demo/preflight.py checks up
# front that kubectl reaches it, that it can get the image (IMAGE=..., or for a kind-<name>
# context the image built here and `kind load docker-image`), that Helm is there and MINIO_IMAGE
# is given; then MinIO is installed as a Deployment + Service continuum-system/minio
# (hack/demo/minio.yaml) and reached from here through `kubectl port-forward`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$HACK_DIR/cluster/config.sh"
export T0
NS=continuum-demo
SYSTEM_NS=continuum-system
RELEASE=continuum
OUT_DIR=${DEMO_OUT:-/tmp/continuum-demo}
KUBECTL="$CACHE_DIR/kube-$KUBE_VERSION/bin/kubectl"
HELM="${CONTINUUM_HELM:-$CACHE_DIR/helm-v$HELM_VERSION-k1.$HELM_K8S_MINOR/bin/helm}"
VENV_PY="$REPO_DIR/.venv/bin/python"

# Which cluster kubectl and helm talk to: the local cluster's kubeconfig, or (current context)
# the user's kubeconfig pinned to the context the preflight saw.
KUBE_ARGS=(--kubeconfig "$KUBECONFIG_OUT")
HELM_ARGS=(--kubeconfig "$KUBECONFIG_OUT")
IMAGE_HINT=""

kc() { "$KUBECTL" "${KUBE_ARGS[@]}" "$@"; }
helm_() { "$HELM" "${HELM_ARGS[@]}" "$@"; }

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
    die "helm upgrade --install of the chart did not finish (output and operator pod above)$IMAGE_HINT"
  fi
  # An unchanged release does not restart the pod; make sure the operator that reconciles the
  # demo is Ready now (and was not left without its Role by an earlier run).
  kc -n "$SYSTEM_NS" rollout status "deployment/$RELEASE" --timeout=120s >/dev/null \
    || { operator_diagnostics; die "the operator Deployment $SYSTEM_NS/$RELEASE did not become Ready$IMAGE_HINT"; }
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

project_image() {
  echo "continuum:$(python3 -c 'import tomllib;print(tomllib.load(open("'"$REPO_DIR"'/pyproject.toml","rb"))["project"]["version"])')"
}

# loop.py with its settings; the caller adds NAME=value words for its kind of cluster (`env`,
# because bash would take an expanded NAME=value for the command, not for an assignment).
run_loop() {
  local image=$1; shift
  env KUBECTL="$KUBECTL" CONTINUUM_STATE="$STATE_DIR" DEMO_NS="$NS" \
    SYSTEM_NS="$SYSTEM_NS" RELEASE="$RELEASE" IMAGE="$image" DEMO_OUT="$OUT_DIR" "$@" \
    "$VENV_PY" "$HACK_DIR/demo/loop.py" || die "the demo stopped (see the error above)"
}

# ---------------------------------------------------------------------------- the local cluster

main_local() {
  "$HACK_DIR/cluster-up.sh"
  step "Building the project image and loading it into the cluster"
  "$HACK_DIR/image.sh"
  local image; image="$(project_image)"
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

  run_loop "$image" KUBECONFIG="$KUBECONFIG_OUT"
}

# ---------------------------------------------------------------------------- the current context

# The user's kubeconfig: `make` exports the local cluster's as KUBECONFIG when the user set none,
# so the Makefile passes what the user had as DEMO_KUBECONFIG (empty: kubectl's default).
use_callers_kubeconfig() {
  if [ -n "${DEMO_KUBECONFIG+set}" ]; then
    if [ -n "$DEMO_KUBECONFIG" ]; then export KUBECONFIG="$DEMO_KUBECONFIG"; else unset KUBECONFIG; fi
  fi
}

# The cached binaries of `make tools` when there, else the user's own.
pick_tools() {
  [ -x "$KUBECTL" ] || KUBECTL=$(command -v kubectl) \
    || die "no kubectl: install it (https://kubernetes.io/docs/tasks/tools/) or run \`make tools\`"
  [ -x "$HELM" ] || HELM=$(command -v helm) || HELM=helm
}

preflight() {
  step "Checking the current kube context (hack/demo/preflight.py)"
  local plan
  plan=$(KUBECTL="$KUBECTL" HELM="$HELM" "$VENV_PY" "$HACK_DIR/demo/preflight.py" check) || exit 2
  eval "$plan"
  KUBE_ARGS=(--context "$DEMO_CONTEXT")
  HELM_ARGS=(--kube-context "$DEMO_CONTEXT")
  IMAGE_HINT="; if its pod cannot pull $DEMO_IMAGE (ErrImagePull), push the image where the cluster pulls from and pass IMAGE=..."
  log "context $DEMO_CONTEXT ($(kc config view --minify -o jsonpath='{.clusters[0].cluster.server}')), image $DEMO_IMAGE, MinIO image $DEMO_MINIO_IMAGE"
}

provide_images() {
  if [ "$DEMO_BUILD_IMAGE" = 1 ]; then
    step "Building the project image $DEMO_IMAGE"
    "$HACK_DIR/image.sh"
  fi
  local image
  for image in $DEMO_KIND_LOAD; do
    step "kind load docker-image $image --name $DEMO_KIND_CLUSTER"
    kind load docker-image "$image" --name "$DEMO_KIND_CLUSTER" \
      || die "kind could not load $image into cluster $DEMO_KIND_CLUSTER"
  done
}

minio_diagnostics() {
  kc -n "$SYSTEM_NS" get deploy,pods -l app.kubernetes.io/name=minio -o wide >&2 || true
  kc -n "$SYSTEM_NS" describe pods -l app.kubernetes.io/name=minio 2>&1 | tail -n 20 >&2 || true
  kc -n "$SYSTEM_NS" logs deployment/minio --tail=20 >&2 || true
}

install_minio() {
  step "Installing MinIO ($DEMO_MINIO_IMAGE) as Deployment + Service $SYSTEM_NS/minio"
  kc create namespace "$SYSTEM_NS" --dry-run=client -o yaml | kc apply -f - >/dev/null
  # A rerun keeps the credentials (and so the MinIO pod) of the first run.
  if ! kc -n "$SYSTEM_NS" get secret minio-credentials >/dev/null 2>&1; then
    kc -n "$SYSTEM_NS" create secret generic minio-credentials >/dev/null \
      --from-literal=AWS_ACCESS_KEY_ID=continuum-demo \
      --from-literal=AWS_SECRET_ACCESS_KEY="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
    kc -n "$SYSTEM_NS" label secret minio-credentials app.kubernetes.io/part-of=continuum-demo >/dev/null
  fi
  sed "s|@MINIO_IMAGE@|$DEMO_MINIO_IMAGE|" "$HACK_DIR/demo/minio.yaml" | kc apply -f - >/dev/null
  kc -n "$SYSTEM_NS" rollout status deployment/minio --timeout=180s >/dev/null || {
    minio_diagnostics
    die "MinIO did not become Ready (above); can the cluster pull MINIO_IMAGE=$DEMO_MINIO_IMAGE?"
  }
  log "MinIO is Ready at http://minio.$SYSTEM_NS.svc:9000 (credentials: Secret $SYSTEM_NS/minio-credentials)"
}

# The demo reads and writes the bucket from this machine (datasets, inference logs, reports);
# a remote cluster's Service is reachable only through a port-forward, kept open for the run.
forward_minio() {
  local out="$OUT_DIR/minio-port-forward.log" port="" waited=0
  kc -n "$SYSTEM_NS" port-forward svc/minio :9000 >"$out" 2>&1 &
  FORWARD_PID=$!
  trap 'kill "$FORWARD_PID" 2>/dev/null || true' EXIT
  until [ -n "$port" ]; do
    port=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$out" | head -n1)
    sleep 1; waited=$((waited + 1))
    (( waited < 30 )) || { cat "$out" >&2; die "kubectl port-forward to $SYSTEM_NS/minio did not start"; }
  done
  write_s3_env "http://127.0.0.1:$port"
  log "MinIO reachable from here at http://127.0.0.1:$port (kubectl port-forward, pid $FORWARD_PID)"
}

write_s3_env() {
  local secret=(-n "$SYSTEM_NS" get secret minio-credentials -o)
  umask 077
  cat >"$OUT_DIR/s3.env" <<ENV
S3_ENDPOINT=$1
S3_ENDPOINT_IN_CLUSTER=http://minio.$SYSTEM_NS.svc:9000
AWS_ACCESS_KEY_ID=$(kc "${secret[@]}" jsonpath='{.data.AWS_ACCESS_KEY_ID}' | base64 -d)
AWS_SECRET_ACCESS_KEY=$(kc "${secret[@]}" jsonpath='{.data.AWS_SECRET_ACCESS_KEY}' | base64 -d)
AWS_DEFAULT_REGION=us-east-1
ENV
}

main_current() {
  use_callers_kubeconfig
  pick_tools
  preflight
  provide_images
  install_minio
  forward_minio
  step "Installing the operator in the cluster with Helm (charts/continuum, namespace $SYSTEM_NS)"
  prepare_namespace
  install_operator "$DEMO_IMAGE"
  run_loop "$DEMO_IMAGE" DEMO_CLUSTER=current DEMO_CONTEXT="$DEMO_CONTEXT" \
    DEMO_S3_ENV="$OUT_DIR/s3.env"
}

main() {
  mkdir -p "$OUT_DIR"
  [ -x "$VENV_PY" ] || die "no project virtualenv at $REPO_DIR/.venv: run \`make setup\` (make demo does it)"
  local target; target=$("$VENV_PY" "$HACK_DIR/demo/preflight.py" mode) || exit 2
  case "$target" in
    local) main_local ;;
    current) main_current ;;
  esac
}

# Sourced (by tests/unit/test_demo_preflight.py), it only defines the functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
