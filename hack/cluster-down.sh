#!/usr/bin/env bash
# Stop the local cluster and undo every host change cluster-up made: processes, containers,
# mounts, network namespaces, interfaces, routes, iptables rules, kernel settings, state files.
# Build caches stay (they are keyed by version and reused).
source "$(dirname "$0")/lib.sh"
source "$HACK_DIR/cluster/config.sh"
source "$HACK_DIR/cluster/procs.sh"
source "$HACK_DIR/cluster/host.sh"

stop_pods() {
  is_running containerd || return 0
  local t
  for t in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
  done
  sleep 1
}

# SIGKILL every pid given; none given, or one already gone, is no error.
kill_pids() {
  [ $# -eq 0 ] || kill -9 "$@" 2>/dev/null || true
}

# containerd's shims outlive containerd itself; they and their containers must go too.
kill_leftovers() {
  local pids=()
  mapfile -t pids < <(pgrep -f "containerd-shim.*$CONTAINERD_DIR" || true)
  kill_pids "${pids[@]}"
  mapfile -t pids < <(find /sys/fs/cgroup/*/kubepods* -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u || true)
  kill_pids "${pids[@]}"
  sleep 0.5
  find /sys/fs/cgroup/*/kubepods* -depth -type d -exec rmdir {} + 2>/dev/null || true
}

unmount_all() {
  local m
  while IFS= read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk '{print $2}' /proc/mounts | grep -E "^($STATE_DIR|$CONTAINERD_DIR|/run/netns/cni-)" | sort -r)
}

cleanup_kube_proxy_rules() {
  local kp="$CACHE_DIR/kube-$KUBE_VERSION/bin/kube-proxy"
  if [ -x "$kp" ]; then "$kp" --cleanup >/dev/null 2>&1 || true; fi
}

# The kubelet and kube-proxy leave KUBE-* chains (and jumps to them) in several tables.
remove_kube_chains() {
  local t rule chain
  for t in filter nat mangle; do
    iptables -t "$t" -S | grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j KUBE-' \
      | while read -r rule; do eval "iptables -t $t ${rule/-A/-D}" || true; done || true
    for chain in $(iptables -t "$t" -S | awk '/^-N KUBE-/{print $2}'); do iptables -t "$t" -F "$chain"; done
    for chain in $(iptables -t "$t" -S | awk '/^-N KUBE-/{print $2}'); do iptables -t "$t" -X "$chain" || true; done
  done
}

main() {
  require_root
  step "Stopping the local cluster"
  stop_proc kube-proxy; stop_proc kubelet
  stop_pods
  local p; for p in coredns minio kube-scheduler kube-controller-manager kube-apiserver etcd containerd; do stop_proc "$p"; done
  kill_leftovers
  unmount_all
  cleanup_kube_proxy_rules
  remove_kube_chains
  remove_network
  remove_guard
  restore_all_sysctls
  rm -rf "$STATE_DIR" "$CONTAINERD_DIR"
  log "cluster stopped; host restored"
}

main "$@"
