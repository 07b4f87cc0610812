# shellcheck shell=bash
# Control-plane and node processes of the local cluster. Sourced.

write_all_kubeconfigs() {
  mkdir -p "$STATE_DIR/kubeconfigs"
  local u
  for u in admin controller-manager scheduler kubelet kube-proxy coredns; do
    write_kubeconfig "$STATE_DIR/kubeconfigs/$u.conf" "$u"
  done
  cp "$STATE_DIR/kubeconfigs/admin.conf" "$KUBECONFIG_OUT"
}

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_OUT" "$@"; }

start_etcd() {
  mkdir -p "$STATE_DIR/etcd" && chmod 700 "$STATE_DIR/etcd"
  # Loopback only: nothing but the API server on this host talks to etcd.
  start_proc etcd "$ETCD" --name continuum --data-dir "$STATE_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "continuum=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn
  wait_for etcd 60 "$LOGS/etcd.log" curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health"
}

start_apiserver() {
  start_proc kube-apiserver "$KBIN/kube-apiserver" \
    --advertise-address "$NODE_IP" --bind-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" --authorization-mode Node,RBAC --anonymous-auth=false \
    --enable-admission-plugins NodeRestriction \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=false \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP --profiling=false --v 1 \
    --requestheader-client-ca-file "$PKI/ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key"
  wait_for kube-apiserver 120 "$LOGS/kube-apiserver.log" kc get --raw /readyz
}

start_controller_manager() {
  start_proc kube-controller-manager "$KBIN/kube-controller-manager" \
    --kubeconfig "$STATE_DIR/kubeconfigs/controller-manager.conf" \
    --authentication-kubeconfig "$STATE_DIR/kubeconfigs/controller-manager.conf" \
    --authorization-kubeconfig "$STATE_DIR/kubeconfigs/controller-manager.conf" \
    --bind-address 127.0.0.1 --use-service-account-credentials \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --leader-elect=false --profiling=false --v 1
}

start_scheduler() {
  start_proc kube-scheduler "$KBIN/kube-scheduler" \
    --kubeconfig "$STATE_DIR/kubeconfigs/scheduler.conf" \
    --authentication-kubeconfig "$STATE_DIR/kubeconfigs/scheduler.conf" \
    --authorization-kubeconfig "$STATE_DIR/kubeconfigs/scheduler.conf" \
    --bind-address 127.0.0.1 --leader-elect=false --profiling=false --v 1
}

write_containerd_config() {
  mkdir -p "$STATE_DIR/containerd" "$CONTAINERD_DIR" "$STATE_DIR/cni/net.d"
  write_if_changed "$STATE_DIR/containerd/config.toml" <<TOML
version = 2
root = "$STATE_DIR/containerd/root"
state = "$CONTAINERD_DIR/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.1"
  # This VM lacks CAP_SYS_RESOURCE: negative oom_score_adj values must be clamped.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE_DIR/cni/net.d"
TOML
}

start_containerd() {
  write_containerd_config
  start_proc containerd containerd --config "$STATE_DIR/containerd/config.toml"
  wait_for containerd 60 "$LOGS/containerd.log" ctr --address "$CONTAINERD_SOCK" version
}

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

load_pause_image() {
  ctr_k8s images ls -q | grep -x "registry.k8s.io/pause:3.10.1" >/dev/null && return
  local tar="$CACHE_DIR/pause-3.10.1.tar"
  [ -f "$tar" ] || "$HACK_DIR/pause/build.sh"
  ctr_k8s images import "$tar" >/dev/null
  log "pause image imported"
}

write_cni_config() {
  mkdir -p "$STATE_DIR/cni/net.d"
  write_if_changed "$STATE_DIR/cni/net.d/10-continuum.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "continuum",
  "plugins": [
    {"type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$STATE_DIR/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

write_kubelet_config() {
  mkdir -p "$STATE_DIR/kubelet"
  : > "$STATE_DIR/kubelet/resolv.conf"   # pods get cluster DNS only, never the host's resolvers
  write_if_changed "$STATE_DIR/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
address: "$NODE_IP"
healthzBindAddress: 127.0.0.1
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: ["$DNS_SVC_IP"]
clusterDomain: "$CLUSTER_DOMAIN"
resolvConf: "$STATE_DIR/kubelet/resolv.conf"
containerRuntimeEndpoint: "unix://$CONTAINERD_SOCK"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"}
oomScoreAdj: 0
serializeImagePulls: false
maxPods: 110
YAML
}

start_kubelet() {
  write_kubelet_config
  start_proc kubelet "$KBIN/kubelet" --config "$STATE_DIR/kubelet/config.yaml" \
    --kubeconfig "$STATE_DIR/kubeconfigs/kubelet.conf" --root-dir "$STATE_DIR/kubelet/root" \
    --node-ip "$NODE_IP" --hostname-override "$NODE_NAME" --v 1
}

start_kube_proxy() {
  # kube-proxy exits when its config file changes under it: rewrite only real changes.
  write_if_changed "$STATE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$STATE_DIR/kubeconfigs/kube-proxy.conf"}
mode: iptables
clusterCIDR: "$POD_CIDR"
hostnameOverride: "$NODE_NAME"
bindAddress: "$NODE_IP"
healthzBindAddress: "127.0.0.1:10256"
metricsBindAddress: "127.0.0.1:10249"
nodePortAddresses: ["$NODE_IP/32"]
oomScoreAdj: 0
conntrack: {maxPerCore: 0}
YAML
  start_proc kube-proxy "$KBIN/kube-proxy" --config "$STATE_DIR/kube-proxy.yaml" --v 1
  wait_for kube-proxy 60 "$LOGS/kube-proxy.log" curl -fsS http://127.0.0.1:10256/livez
}

node_ready() {
  kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -x True >/dev/null
}

wait_node_ready() { wait_for "node $NODE_NAME Ready" 180 "$LOGS/kubelet.log" node_ready; }
