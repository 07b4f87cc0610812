#!/usr/bin/env bash
# For machines with Docker and internet: a kind cluster with the same kubeconfig contract as
# cluster-up (admin kubeconfig at $KUBECONFIG_OUT). Not used on our offline CI machines.
source "$(dirname "$0")/lib.sh"
command -v kind >/dev/null || die "kind is not installed: go install sigs.k8s.io/kind@v0.33.0"
command -v docker >/dev/null || die "kind needs Docker: install and start it first"
kind get clusters 2>/dev/null | grep -x continuum >/dev/null || kind create cluster --config "$REPO_DIR/kind-config.yaml"
mkdir -p "$(dirname "$KUBECONFIG_OUT")"
kind get kubeconfig --name continuum > "$KUBECONFIG_OUT"
chmod 600 "$KUBECONFIG_OUT"
log "kind cluster 'continuum' ready; export KUBECONFIG=$KUBECONFIG_OUT"
log "MinIO is not installed by kind-up; see docs/operations.md to run one in the cluster"
