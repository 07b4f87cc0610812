#!/usr/bin/env bash
# Inject a fault into one process of the running local cluster, for the fault tests.
#
#   hack/cluster-fault.sh stop    <component>   SIGTERM, SIGKILL after 10 s; leaves it stopped
#   hack/cluster-fault.sh kill    <component>   SIGKILL at once (a crash); leaves it stopped
#   hack/cluster-fault.sh start   <component>   start it again and wait until it answers
#   hack/cluster-fault.sh restart <component>   stop, then start
#
# Components: etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet
# kube-proxy coredns minio. Starting reuses cluster-up's own start functions (same flags, same
# pid and log files), so `make cluster-up` also repairs whatever a test left stopped.
source "$(dirname "$0")/lib.sh"
source "$HACK_DIR/cluster/config.sh"
source "$HACK_DIR/cluster/procs.sh"
source "$HACK_DIR/cluster/host.sh"
source "$HACK_DIR/cluster/components.sh"
source "$HACK_DIR/cluster/addons.sh"

COMPONENTS="etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns minio"

usage() {
  die "usage: $(basename "$0") stop|kill|start|restart <component>; components: $COMPONENTS"
}

require_component() {
  local c
  for c in $COMPONENTS; do [ "$c" = "$1" ] && return; done
  die "unknown component '$1'; known: $COMPONENTS"
}

# The state must exist: this script repairs and breaks a cluster, it never creates one.
require_cluster_state() {
  [ -d "$RUN" ] || die "no local cluster state in $STATE_DIR; run 'make cluster-up' first"
}

start_component() {
  case $1 in
    etcd) start_etcd ;;
    kube-apiserver) start_apiserver ;;
    kube-controller-manager) start_controller_manager ;;
    kube-scheduler) start_scheduler ;;
    containerd) start_containerd ;;
    kubelet) start_kubelet ;;
    kube-proxy) start_kube_proxy ;;
    coredns) start_coredns ;;
    minio) start_minio ;;
  esac
}

kill_component() {
  local p
  p=$(cat "$RUN/$1.pid" 2>/dev/null) || { log "$1: not running"; return 0; }
  kill -9 "$p" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  rm -f "$RUN/$1.pid"
  log "$1: killed (pid $p)"
}

main() {
  [ $# -eq 2 ] || usage
  local action=$1 component=$2
  require_component "$component"
  require_root
  require_cluster_state
  tool_paths
  case $action in
    stop) stop_proc "$component" ;;
    kill) kill_component "$component" ;;
    start) start_component "$component" ;;
    restart) stop_proc "$component"; start_component "$component" ;;
    *) usage ;;
  esac
}

main "$@"
