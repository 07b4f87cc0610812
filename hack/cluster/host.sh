# shellcheck shell=bash
# Host preparation and cleanup: packages, node address, traffic guard, kernel settings. Sourced.
HOST_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack iproute2 openssl curl)
# shellcheck disable=SC2034  # read by the scripts that source this file
RUN="$STATE_DIR/run" LOGS="$STATE_DIR/logs" PKI="$STATE_DIR/pki"

ensure_host_packages() { ensure_debian_packages "${HOST_PACKAGES[@]}"; }

# shellcheck disable=SC2034  # the paths are read by the scripts that source this file
tool_paths() {
  KBIN="$CACHE_DIR/kube-$KUBE_VERSION/bin"
  ETCD="$CACHE_DIR/etcd-v$ETCD_VERSION/bin/etcd"
  MINIO="$CACHE_DIR/minio-$MINIO_VERSION/bin/minio"
  COREDNS="$CACHE_DIR/coredns-v$COREDNS_VERSION/bin/coredns"
  HELM="$CACHE_DIR/helm-v$HELM_VERSION-k1.$HELM_K8S_MINOR/bin/helm"
  KUBECTL="$KBIN/kubectl"
  export PATH="$KBIN:$PATH"
}

check_ports() {
  require_port "$ETCD_CLIENT_PORT" etcd; require_port "$ETCD_PEER_PORT" etcd
  require_port "$APISERVER_PORT" kube-apiserver
  require_port 10250 kubelet; require_port 10257 kube-controller-manager; require_port 10259 kube-scheduler
  require_port "$MINIO_PORT" minio; require_port "$MINIO_CONSOLE_PORT" minio
}

# Remember the host's kernel settings once, before anything of ours changes them.
save_sysctls() {
  mkdir -p "$STATE_DIR"
  [ -f "$STATE_DIR/sysctl.saved" ] && return
  local k
  for k in $WATCHED_SYSCTLS; do echo "$k=$(sysctl -n "$k" 2>/dev/null)"; done > "$STATE_DIR/sysctl.saved"
  log "saved host kernel settings to $STATE_DIR/sysctl.saved"
}

setup_node_network() {
  ip link show "$NODE_IF" >/dev/null 2>&1 || ip link add "$NODE_IF" type bridge
  [[ "$(ip -4 -o addr show dev "$NODE_IF")" == *"$NODE_IP/32"* ]] || ip addr add "$NODE_IP/32" dev "$NODE_IF"
  ip link set "$NODE_IF" up
  # Forwarding is needed for pod -> Service -> pod on the bridge; the guard below confines it.
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
}

# Nothing addressed to the pod or service ranges may leave the machine, and pods may reach only
# each other and this host: blackhole routes catch traffic no local route claims, and a chain in
# mangle FORWARD (which runs before every filter rule, so kube-proxy's own ACCEPTs cannot
# pre-empt it) drops anything routed from or to the pod bridge other than bridge-to-bridge.
install_guard() {
  ip route replace blackhole "$SERVICE_CIDR"
  ip route replace blackhole "$POD_GUARD_CIDR"
  ipt_guard -N "$GUARD_CHAIN" 2>/dev/null || ipt_guard -F "$GUARD_CHAIN"
  ipt_guard -A "$GUARD_CHAIN" -i "$POD_BRIDGE" -o "$POD_BRIDGE" -j RETURN
  ipt_guard -A "$GUARD_CHAIN" -i "$POD_BRIDGE" -j DROP
  ipt_guard -A "$GUARD_CHAIN" -o "$POD_BRIDGE" -j DROP
  ipt_guard -A "$GUARD_CHAIN" -d "$POD_GUARD_CIDR" -j DROP
  ipt_guard -A "$GUARD_CHAIN" -d "$SERVICE_CIDR" -j DROP
  ipt_guard -C FORWARD -j "$GUARD_CHAIN" 2>/dev/null || ipt_guard -I FORWARD 1 -j "$GUARD_CHAIN"
  # A Docker engine sets the filter FORWARD policy to DROP; pod-to-pod traffic must still pass.
  iptables -C FORWARD -i "$POD_BRIDGE" -o "$POD_BRIDGE" -j ACCEPT 2>/dev/null \
    || iptables -I FORWARD 1 -i "$POD_BRIDGE" -o "$POD_BRIDGE" -j ACCEPT
  iptables -C OUTPUT -o "$(default_if)" -d "$POD_GUARD_CIDR" -j REJECT 2>/dev/null \
    || iptables -I OUTPUT 1 -o "$(default_if)" -d "$POD_GUARD_CIDR" -j REJECT
  log "guard installed: blackhole $SERVICE_CIDR and $POD_GUARD_CIDR, chain $GUARD_CHAIN in mangle FORWARD"
}

ipt_guard() { iptables -t mangle "$@"; }

default_if() { ip route show default | awk '{print $5; exit}'; }

# The kubelet raises kernel.panic_on_oops and friends at start; on these VMs an oops would then
# reboot the machine. Put back every watched setting except the two the cluster needs.
restore_kernel_tuning() {
  local line k v
  while IFS= read -r line; do
    k=${line%%=*}; v=${line#*=}
    case $k in net.ipv4.ip_forward|net.bridge.bridge-nf-call-iptables) continue;; esac
    [ -n "$v" ] && [ "$(sysctl -n "$k" 2>/dev/null)" != "$v" ] && sysctl -qw "$k=$v" && log "restored $k=$v"
  done < "$STATE_DIR/sysctl.saved"
  return 0
}

restore_all_sysctls() {
  [ -f "$STATE_DIR/sysctl.saved" ] || return 0
  local line
  while IFS= read -r line; do
    if [ -n "${line#*=}" ]; then sysctl -qw "$line" || true; fi
  done < "$STATE_DIR/sysctl.saved"
  rm -f "$STATE_DIR/sysctl.saved"
  log "restored host kernel settings"
}

remove_guard() {
  ipt_guard -D FORWARD -j "$GUARD_CHAIN" 2>/dev/null || true
  while iptables -D FORWARD -i "$POD_BRIDGE" -o "$POD_BRIDGE" -j ACCEPT 2>/dev/null; do :; done
  ipt_guard -F "$GUARD_CHAIN" 2>/dev/null || true
  ipt_guard -X "$GUARD_CHAIN" 2>/dev/null || true
  while iptables -D OUTPUT -o "$(default_if)" -d "$POD_GUARD_CIDR" -j REJECT 2>/dev/null; do :; done
  ip route del blackhole "$SERVICE_CIDR" 2>/dev/null || true
  ip route del blackhole "$POD_GUARD_CIDR" 2>/dev/null || true
}

remove_network() {
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do ip netns del "$ns" || true; done
  ip link del "$POD_BRIDGE" 2>/dev/null || true
  ip link del "$NODE_IF" 2>/dev/null || true
}
