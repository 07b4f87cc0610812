# shellcheck shell=bash
# Cluster add-ons run as host processes behind selector-less Services: CoreDNS and MinIO. Sourced.

start_coredns() {
  mkdir -p "$STATE_DIR/coredns"
  cat > "$STATE_DIR/coredns/Corefile" <<CF
.:$DNS_PORT {
    bind $NODE_IP
    errors
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $STATE_DIR/kubeconfigs/coredns.conf continuum-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
CF
  # No 'forward' block: names outside the cluster are never sent to outside resolvers.
  start_proc coredns "$COREDNS" -conf "$STATE_DIR/coredns/Corefile"
}

s3_credentials() {
  if [ ! -f "$STATE_DIR/s3.env" ]; then
    umask 077
    cat > "$STATE_DIR/s3.env" <<ENV
S3_ENDPOINT=http://$NODE_IP:$MINIO_PORT
S3_ENDPOINT_IN_CLUSTER=http://minio.continuum-system.svc:$MINIO_PORT
AWS_ACCESS_KEY_ID=continuum-$(openssl rand -hex 4)
AWS_SECRET_ACCESS_KEY=$(openssl rand -hex 24)
AWS_DEFAULT_REGION=us-east-1
ENV
    umask 022
  fi
  # shellcheck disable=SC1091
  source "$STATE_DIR/s3.env"
}

start_minio() {
  s3_credentials
  mkdir -p "$STATE_DIR/minio"
  start_proc minio env MINIO_ROOT_USER="$AWS_ACCESS_KEY_ID" MINIO_ROOT_PASSWORD="$AWS_SECRET_ACCESS_KEY" \
    MINIO_UPDATE=off MINIO_BROWSER=off \
    "$MINIO" server --quiet --address "$NODE_IP:$MINIO_PORT" --console-address "127.0.0.1:$MINIO_CONSOLE_PORT" "$STATE_DIR/minio"
  wait_for minio 60 "$LOGS/minio.log" curl -fsS "http://$NODE_IP:$MINIO_PORT/minio/health/ready"
  local b
  for b in $S3_BUCKETS; do create_bucket "$b"; done
}

S3_BUCKETS="continuum"

create_bucket() {
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -X PUT "http://$NODE_IP:$MINIO_PORT/$1")
  case $code in 200|409) log "bucket $1: ready";; *) die "creating bucket $1 failed with HTTP $code";; esac
}

# A selector-less Service whose one endpoint is a process on the node address.
host_service() {  # namespace name port protocol...
  local ns=$1 name=$2 port=$3; shift 3
  local ports="" eports="" proto
  for proto in "$@"; do
    ports+="  - {name: ${proto,,}, port: $port, protocol: $proto}"$'\n'
    eports+="- {name: ${proto,,}, port: $port, protocol: $proto}"$'\n'
  done
  local ip_line=""; [ "$name" = kube-dns ] && ip_line="  clusterIP: $DNS_SVC_IP"
  cat <<YAML
---
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: $ns, labels: {app.kubernetes.io/part-of: continuum-local}}
spec:
$ip_line
  ports:
$ports---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $name-host
  namespace: $ns
  labels: {kubernetes.io/service-name: $name, endpointslice.kubernetes.io/managed-by: continuum-local}
addressType: IPv4
endpoints:
- addresses: ["$NODE_IP"]
  conditions: {ready: true}
ports:
$eports
YAML
}

addon_manifests() {
  cat <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: continuum-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: continuum-local:coredns}
rules:
- apiGroups: [""]
  resources: [services, namespaces, pods]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: continuum-local:coredns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: continuum-local:coredns}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:coredns"}]
YAML
  host_service kube-system kube-dns "$DNS_PORT" UDP TCP
  host_service continuum-system minio "$MINIO_PORT" TCP
}

apply_addons() {
  addon_manifests | kc apply -f - >/dev/null
  kc -n continuum-system create secret generic minio-credentials \
    --from-literal=AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" --from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
    --dry-run=client -o yaml | kc apply -f - >/dev/null
  log "add-ons applied: kube-dns ($DNS_SVC_IP), minio.continuum-system.svc, Secret continuum-system/minio-credentials"
}
