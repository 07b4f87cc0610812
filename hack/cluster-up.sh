#!/usr/bin/env bash
# Bring up a real single-node Kubernetes (v$KUBE_VERSION) and MinIO on this machine, built from
# upstream sources. Idempotent: running it again only starts what is not running.
# Writes the admin kubeconfig to $KUBECONFIG_OUT and S3 settings to $STATE_DIR/s3.env.
source "$(dirname "$0")/lib.sh"
source "$HACK_DIR/cluster/config.sh"
source "$HACK_DIR/cluster/procs.sh"
source "$HACK_DIR/cluster/certs.sh"
source "$HACK_DIR/cluster/host.sh"
source "$HACK_DIR/cluster/components.sh"
source "$HACK_DIR/cluster/addons.sh"

main() {
  require_root
  step "Checking prerequisites"
  ensure_host_packages
  "$HACK_DIR/build-tools.sh"
  tool_paths
  check_ports
  step "Preparing the host (node address, traffic guard, kernel settings)"
  save_sysctls
  setup_node_network
  install_guard
  step "Starting the control plane"
  make_pki
  write_all_kubeconfigs
  start_etcd
  start_apiserver
  start_controller_manager
  start_scheduler
  step "Starting the node (containerd, kubelet, kube-proxy)"
  write_cni_config
  start_containerd
  load_pause_image
  start_kubelet
  start_kube_proxy
  wait_node_ready
  restore_kernel_tuning
  step "Cluster add-ons (DNS, MinIO, credentials)"
  start_coredns
  start_minio
  apply_addons
  summary
}

summary() {
  step "Cluster ready in $(( $(date +%s) - T0 ))s"
  cat >&2 <<MSG
  kubeconfig : $KUBECONFIG_OUT      (export KUBECONFIG=$KUBECONFIG_OUT)
  API server : https://$NODE_IP:$APISERVER_PORT   (Kubernetes v$KUBE_VERSION)
  MinIO (S3) : http://$NODE_IP:$MINIO_PORT from the host, http://minio.continuum-system.svc:$MINIO_PORT from pods
  S3 creds   : $STATE_DIR/s3.env (host), Secret continuum-system/minio-credentials (cluster)
  kubectl    : $KUBECTL
  logs       : $LOGS
  stop with  : make cluster-down
MSG
}

main "$@"
