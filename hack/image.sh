#!/usr/bin/env bash
# Build the project image continuum:<version> offline and load it into the cluster's containerd.
#
#   hack/image.sh
#
# Steps (each timed): docker engine (hack/docker.sh), base image (hack/base-image.sh), wheelhouse
# (hack/wheelhouse.sh), `docker build --network none`, and, when the cluster's containerd socket
# exists, `docker save | ctr -n k8s.io images import -`.
#
# Environment:
#   IMAGE            image name                 (default continuum:<[project].version in pyproject>)
#   CONTAINERD_SOCK  the cluster's containerd   (default /run/continuum/containerd/containerd.sock);
#                    skipped when the socket does not exist
#   BASE_IMAGE       base image                 (default python:3.11-slim)
#   NO_CACHE=1       docker build --no-cache
#
# The tag is never :latest (the kubelet would always try to pull it); pods use the version tag
# with imagePullPolicy IfNotPresent.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONTAINERD_SOCK="${CONTAINERD_SOCK:-/run/continuum/containerd/containerd.sock}"
BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim}"
export BASE_IMAGE
# Docker's CLI may be newer than the engine and lack buildx; the classic builder is what
# Debian's docker.io 20.10 engine supports without plugins, and it honours --network none.
export DOCKER_BUILDKIT=0
TIMINGS=()
# The steps' logs count seconds from the start of this script.
export T0

# Run one step and remember how long it took.
timed() {
  local name="$1" start; shift
  start=$(date +%s)
  "$@"
  TIMINGS+=("$(printf '%-12s %4ss' "$name" "$(( $(date +%s) - start ))")")
}

project_version() {
  python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "$REPO_DIR/pyproject.toml" || die "cannot read [project].version from pyproject.toml (python3 >= 3.11 needed)"
}

build_image() {
  local image="$1" version="$2" revision args=()
  revision="$(git -C "$REPO_DIR" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  if ! git -C "$REPO_DIR" diff --quiet HEAD -- operator pyproject.toml 2>/dev/null; then revision="$revision-dirty"; fi
  [ "${NO_CACHE:-0}" = 1 ] && args+=(--no-cache)
  step "docker build --network none -t $image"
  with_heartbeat "docker build" docker build --network none "${args[@]}" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
    -t "$image" "$REPO_DIR"
  docker run --rm --network none "$image" version >/dev/null \
    || die "the built image does not run '$image version'; see 'docker run --rm $image version'"
  log "$image: $(docker image inspect "$image" --format '{{.Size}}' | awk '{printf "%d MB", $1/1e6}')"
}

# The name containerd stores an image under: continuum:0.1.0 -> docker.io/library/continuum:0.1.0.
containerd_ref() {
  local image="$1" first="${1%%/*}"
  if [[ "$image" != */* ]]; then echo "docker.io/library/$image"
  elif [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then echo "docker.io/$image"
  else echo "$image"; fi
}

# The config digest (= docker's image ID) of the image containerd holds under $1, if any.
containerd_image_id() {
  local digest
  digest="$(ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls 2>/dev/null | awk -v r="$1" '$1 == r { print $3 }')"
  [ -n "$digest" ] || return 0
  ctr --address "$CONTAINERD_SOCK" -n k8s.io content get "$digest" 2>/dev/null \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["digest"])' 2>/dev/null || true
}

load_into_containerd() {
  local image="$1" ref
  if [ ! -S "$CONTAINERD_SOCK" ]; then
    log "no containerd socket at $CONTAINERD_SOCK; not loading $image into the cluster (start the cluster, then re-run)"
    return 0
  fi
  command -v ctr >/dev/null || die "ctr is not installed; run 'apt-get install -y containerd'"
  ref="$(containerd_ref "$image")"
  if [ "$(containerd_image_id "$ref")" = "$(docker image inspect "$image" --format '{{.Id}}')" ]; then
    log "containerd already has $ref at this image ID; not loading it again"
    return 0
  fi
  step "Loading $image into containerd ($CONTAINERD_SOCK, namespace k8s.io)"
  local out; out="$(mktemp)"
  if ! docker save "$image" | ctr --address "$CONTAINERD_SOCK" -n k8s.io images import - >"$out" 2>&1; then
    cat "$out" >&2; rm -f "$out"
    die "importing $image into containerd failed (output above)"
  fi
  rm -f "$out"
  [ "$(containerd_image_id "$ref")" = "$(docker image inspect "$image" --format '{{.Id}}')" ] \
    || die "containerd does not list $ref with the built image ID after the import"
  log "containerd has $ref"
}

main() {
  local version image
  version="$(project_version)"
  image="${IMAGE:-continuum:$version}"
  [[ "${image##*/}" == *:* ]] || die "IMAGE=$image has no tag; use name:version"
  [[ "${image##*:}" != latest ]] || die "IMAGE=$image: avoid :latest (the kubelet always pulls it); use name:version"
  timed docker     "$HACK_DIR/docker.sh"
  timed base-image "$HACK_DIR/base-image.sh"
  timed wheelhouse "$HACK_DIR/wheelhouse.sh"
  timed build      build_image "$image" "$version"
  timed load       load_into_containerd "$image"
  step "Done: $image"
  printf '  %s\n' "${TIMINGS[@]}" "$(printf '%-12s %4ss' total "$(( $(date +%s) - T0 ))")" >&2
  echo "$image"
}

main "$@"
