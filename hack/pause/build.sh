#!/usr/bin/env bash
# Build the cluster's sandbox image registry.k8s.io/pause:3.10.1 offline: our own pause.c,
# compiled static, in a one-layer image written by mkimage.py (no Docker daemon needed).
#
#   hack/pause/build.sh                 # writes $CACHE_DIR/pause-3.10.1.tar (default /var/cache/continuum)
#   IMPORT=1 hack/pause/build.sh        # ... and imports it into the cluster's containerd
#
# Environment:
#   PAUSE_TAG        image name           (default registry.k8s.io/pause:3.10.1; must equal
#                                          containerd's sandbox_image)
#   IMPORT=1         import the tarball with ctr into CONTAINERD_SOCK, namespace k8s.io
#   CONTAINERD_SOCK  the cluster's containerd (default /run/continuum/containerd/containerd.sock)
#   FORCE=1          rebuild even when the tarball matches the sources
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"

PAUSE_DIR="$HACK_DIR/pause"
PAUSE_TAG="${PAUSE_TAG:-registry.k8s.io/pause:3.10.1}"
CONTAINERD_SOCK="${CONTAINERD_SOCK:-/run/continuum/containerd/containerd.sock}"
OUT="$CACHE_DIR/pause-${PAUSE_TAG##*:}.tar"

# What the tarball is made from; a change rebuilds it.
sources_hash() {
  { cat "$PAUSE_DIR/pause.c" "$PAUSE_DIR/mkimage.py"; echo "$PAUSE_TAG"; } | sha256sum | cut -d' ' -f1
}

compile() {
  local bin="$1"
  command -v gcc >/dev/null || die "gcc is not installed; run 'apt-get install -y gcc libc6-dev'"
  gcc -Os -Wall -Wextra -Werror -static -o "$bin" "$PAUSE_DIR/pause.c" \
    || die "compiling pause.c failed; a static build needs libc6-dev (apt-get install -y libc6-dev)"
  strip "$bin" 2>/dev/null || true
  [ "$("$bin" --version)" = "continuum-pause ${PAUSE_TAG##*:}" ] || die "the compiled pause binary does not run"
}

build() {
  local hash="$1" work
  work="$(mktemp -d)"
  # shellcheck disable=SC2064  # expand $work now: it is local
  trap "rm -rf '$work'" EXIT
  step "Building $PAUSE_TAG (static pause, $(basename "$OUT"))"
  compile "$work/pause"
  log "pause binary: $(stat -c %s "$work/pause") bytes"
  mkdir -p "$CACHE_DIR"
  python3 "$PAUSE_DIR/mkimage.py" --tag "$PAUSE_TAG" --entrypoint /pause --user 65535:65535 \
    --add "$work/pause:/pause" "$OUT" >&2
  echo "$hash" >"$OUT.sha256"
  rm -rf "$work"; trap - EXIT
}

import() {
  [ -S "$CONTAINERD_SOCK" ] || die "no containerd socket at $CONTAINERD_SOCK; start the cluster or set CONTAINERD_SOCK"
  step "Importing $PAUSE_TAG into containerd ($CONTAINERD_SOCK, namespace k8s.io)"
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$OUT" >&2
}

main() {
  local hash
  hash="$(sources_hash)"
  if [ -s "$OUT" ] && [ "$(cat "$OUT.sha256" 2>/dev/null)" = "$hash" ] && [ "${FORCE:-0}" != 1 ]; then
    log "$OUT is up to date"
  else
    build "$hash"
  fi
  if [ "${IMPORT:-0}" = 1 ]; then import; fi
  echo "$OUT"
}

main "$@"
