#!/usr/bin/env bash
# Make sure a Docker engine is installed and answering, for building the project image offline.
#
#   hack/docker.sh            # install docker.io from Debian if missing, start dockerd if down
#
# Environment:
#   DOCKERD_LOG      dockerd's log file          (default /var/log/continuum-dockerd.log)
#   DOCKERD_PIDFILE  dockerd's pid file          (default /run/continuum-dockerd.pid)
#   DOCKERD_WAIT     seconds to wait for dockerd (default 60)
#
# dockerd runs its own containerd (or the system one at /run/containerd); it never uses the
# cluster's containerd at /run/continuum/containerd/containerd.sock. Builds run with
# `docker build --network none`, so they need no network at all.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DOCKERD_LOG="${DOCKERD_LOG:-/var/log/continuum-dockerd.log}"
DOCKERD_PIDFILE="${DOCKERD_PIDFILE:-/run/continuum-dockerd.pid}"
DOCKERD_WAIT="${DOCKERD_WAIT:-60}"
DOCKER_LOCK="${DOCKER_LOCK:-/run/continuum-docker.lock}"

docker_up() { docker info >/dev/null 2>&1; }

# apt and dpkg hold their locks while another install runs; wait rather than fail.
wait_for_apt() {
  local waited=0 p busy
  while :; do
    busy=""
    for p in apt apt-get dpkg unattended-upgr; do
      if pgrep -x "$p" >/dev/null; then busy="$p"; fi
    done
    [ -z "$busy" ] && return 0
    (( waited % 30 == 0 )) && log "waiting for another package manager ($busy) to finish (${waited}s)"
    (( waited >= 900 )) && die "apt is still busy after ${waited}s ($busy); wait for it or stop it, then re-run"
    sleep 5; waited=$(( waited + 5 ))
  done
}

install_docker() {
  if command -v dockerd >/dev/null && command -v docker >/dev/null; then return 0; fi
  require_root
  step "Installing docker.io from Debian (apt)"
  wait_for_apt
  with_heartbeat "apt-get update" apt-get -o DPkg::Lock::Timeout=600 update
  wait_for_apt
  with_heartbeat "apt-get install docker.io" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends docker.io containerd runc
  command -v dockerd >/dev/null || die "docker.io installed but dockerd is not on PATH ($PATH)"
}

start_dockerd() {
  require_root
  local pid
  if [ -s "$DOCKERD_PIDFILE" ] && pid="$(cat "$DOCKERD_PIDFILE")" && kill -0 "$pid" 2>/dev/null; then
    log "dockerd (pid $pid) is running but not answering yet; waiting"
    return 0
  fi
  # A stale pid file from a killed dockerd makes the next start refuse to run.
  rm -f "$DOCKERD_PIDFILE"
  step "Starting dockerd (log: $DOCKERD_LOG)"
  mkdir -p "$(dirname "$DOCKERD_LOG")"
  # setsid: dockerd must outlive this script and its process group.
  setsid dockerd --pidfile "$DOCKERD_PIDFILE" --iptables=true >>"$DOCKERD_LOG" 2>&1 </dev/null &
  disown || true
}

wait_for_docker() {
  local i
  for (( i = 0; i < DOCKERD_WAIT; i++ )); do
    docker_up && return 0
    sleep 1
  done
  tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
  die "dockerd did not answer 'docker info' within ${DOCKERD_WAIT}s; see $DOCKERD_LOG (last lines above)"
}

check_containerd() {
  local commit
  commit="$(docker info --format '{{.ContainerdCommit.ID}}' 2>/dev/null || true)"
  # The cluster's containerd has its own socket; dockerd is started without --containerd, so it
  # either manages its own (/run/docker/containerd) or uses the system one (/run/containerd).
  if [ -s "$DOCKERD_PIDFILE" ] && tr '\0' ' ' <"/proc/$(cat "$DOCKERD_PIDFILE")/cmdline" 2>/dev/null \
      | grep -- '/run/continuum/containerd' >/dev/null; then
    die "dockerd was started with the cluster's containerd socket; stop it (kill \$(cat $DOCKERD_PIDFILE)) and re-run"
  fi
  log "docker engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) is up (containerd ${commit:0:12})"
}

main() {
  install_docker
  if docker_up; then check_containerd; return 0; fi
  mkdir -p "$(dirname "$DOCKER_LOCK")"
  # Several scripts may call us at once; one of them starts dockerd.
  exec 9>"$DOCKER_LOCK"
  flock 9
  if ! docker_up; then
    start_dockerd
    wait_for_docker
  fi
  flock -u 9
  check_containerd
}

main "$@"
