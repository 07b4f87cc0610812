# shellcheck shell=bash
# Network and naming of the local cluster. Sourced by the cluster scripts.
# shellcheck disable=SC2034  # the scripts that source this file read these, not the file itself
# Node address: lives on a dedicated local bridge with no ports, so it is reachable
# only from this machine (the kubelet rejects loopback node IPs).
NODE_NAME=continuum-node
NODE_IF=cnt-node0
NODE_IP=172.31.250.1
POD_BRIDGE=cnt-pods0
POD_CIDR=10.88.0.0/24
POD_GUARD_CIDR=10.88.0.0/16       # blackholed, so pod traffic without a bridge route cannot leave
SERVICE_CIDR=10.96.0.0/24
KUBERNETES_SVC_IP=10.96.0.1
DNS_SVC_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
APISERVER_PORT=6443
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380
MINIO_PORT=9000
MINIO_CONSOLE_PORT=9001
DNS_PORT=53
CONTAINERD_DIR=/run/continuum/containerd
CONTAINERD_SOCK=$CONTAINERD_DIR/containerd.sock
GUARD_CHAIN=CONTINUUM-GUARD
# Kernel settings the kubelet and kube-proxy may change; saved at cluster-up, restored after.
WATCHED_SYSCTLS="kernel.panic_on_oops kernel.panic vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables net.ipv4.ip_forward"
