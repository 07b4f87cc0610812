# shellcheck shell=bash
# Shared helpers for the hack/ scripts. Source it; do not run it.
set -euo pipefail
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034  # read by the scripts that source this file
REPO_DIR="$(cd "$HACK_DIR/.." && pwd)"
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"
# Build caches and binaries live outside the repo, keyed by version.
# shellcheck disable=SC2034  # read by the scripts that source this file
CACHE_DIR="${CONTINUUM_CACHE:-/var/cache/continuum}"
# Runtime state of the local cluster (certs, etcd data, logs, pids).
STATE_DIR="${CONTINUUM_STATE:-/var/lib/continuum-cluster}"
# shellcheck disable=SC2034  # read by the scripts that source this file
KUBECONFIG_OUT="${CONTINUUM_KUBECONFIG:-$STATE_DIR/kubeconfig}"
T0=${T0:-$(date +%s)}

log()  { printf '[%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
step() { printf '\n[%4ss] ==> %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root() {
  [ "$(id -u)" = 0 ] || die "this step changes the host (network, mounts, services) and must run as root; re-run with sudo"
}

# Install the Debian packages among the arguments that are not installed yet; apt-get update
# first, because a fresh machine (CI) has no package lists.
ensure_debian_packages() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing Debian packages: ${missing[*]}"
  with_heartbeat "apt-get update" apt-get update
  with_heartbeat "apt-get install" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

require_go() {
  command -v go >/dev/null || die "Go is not installed; install Go >= 1.24 (the build uses the Go module proxy)"
}

# Run a long command, printing a heartbeat every 30 s so the user sees progress.
with_heartbeat() {
  local what="$1"; shift
  local logf; logf="$(mktemp)"
  "$@" >"$logf" 2>&1 &
  local pid=$! start; start=$(date +%s)
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    local el=$(( $(date +%s) - start ))
    if (( el % 30 < 5 )); then log "$what: still working (${el}s; last: $(tail -n1 "$logf" | cut -c1-100))"; fi
  done
  if ! wait "$pid"; then tail -n 40 "$logf" >&2; rm -f "$logf"; die "$what failed (output above)"; fi
  rm -f "$logf"
}
