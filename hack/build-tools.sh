#!/usr/bin/env bash
# Build the cluster's binaries from the Go module proxy into $CACHE_DIR/<tool>-<version>/bin.
# A tool whose folder is complete is reused; nothing is rebuilt.
# Usage: hack/build-tools.sh [kube|etcd|minio|helm|coredns|prometheus|argocd ...]   (default: all)
source "$(dirname "$0")/lib.sh"
export GOFLAGS="${GOFLAGS:--mod=mod}" GOTOOLCHAIN=local

tool_dir() { echo "$CACHE_DIR/$1-$2"; }

# Prints the folder and returns 0 when the tool is already built.
already_built() { [ -f "$(tool_dir "$1" "$2")/.complete" ]; }

build_kube() {
  local v=$KUBE_VERSION d; d=$(tool_dir kube "$v")
  already_built kube "$v" && { log "kubernetes v$v: cached in $d"; return; }
  step "Building Kubernetes v$v (apiserver, controller-manager, scheduler, kubelet, kube-proxy, kubectl); cold build takes 15-30 min"
  mkdir -p "$d/src" && cd "$d/src"
  local mod; mod=$(go mod download -json "k8s.io/kubernetes@v$v" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
  write_kube_wrapper_mod "$mod" "$v" > go.mod
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl) modules=()
  for c in "${cmds[@]}"; do modules+=("k8s.io/kubernetes/cmd/$c@v$v"); done
  with_heartbeat "go get kubernetes" go get "${modules[@]}"
  local ldf; ldf=$(kube_ldflags "$v")
  mkdir -p "$d/bin"
  for c in "${cmds[@]}"; do
    log "compiling $c"
    # kubelet is built with cgo like upstream; the rest are static.
    local cgo=0; [ "$c" = kubelet ] && cgo=1
    with_heartbeat "build $c" env CGO_ENABLED=$cgo go build -p 2 -trimpath -tags selinux,notest \
      -ldflags "$ldf" -o "$d/bin/$c" "k8s.io/kubernetes/cmd/$c"
  done
  "$d/bin/kube-apiserver" --version | grep "v$v" >/dev/null || die "kube-apiserver does not report v$v"
  touch "$d/.complete"
}

# The kubernetes module requires its staging modules at v0.0.0; map each to its published tag.
write_kube_wrapper_mod() {
  local mod=$1 v=$2 sv="v0.${2#1.}"
  echo "module local/k8sbuild"; echo
  grep -E '^go [0-9]' "$mod"; grep -E '^godebug' "$mod" || true
  echo; echo "require k8s.io/kubernetes v$v"; echo; echo "replace ("
  grep -oE 'k8s.io/[a-z0-9-]+ => \./staging' "$mod" | awk -v sv="$sv" '{print "\t"$1" => "$1" "sv}'
  echo ")"
}

# Stamp the true version so /version, kubectl and Helm see v1.34.x, not v0.0.0.
kube_ldflags() {
  local v=$1 minor; minor=$(echo "$v" | cut -d. -f2)
  local f="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f="$f -X $p.gitVersion=v$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    f="$f -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$f"
}

# Build a main package of a module through a throwaway wrapper module.
build_go_main() {
  local name=$1 v=$2 modpath=$3 pkg=$4 out=$5 ldflags=${6:-"-s -w"} key=${7:-$2}
  local d; d=$(tool_dir "$name" "$key")
  already_built "$name" "$key" && { log "$name $key: cached in $d"; return; }
  step "Building $name $v from $modpath"
  mkdir -p "$d/src" "$d/bin" && cd "$d/src"
  [ -f go.mod ] || go mod init "local/${name}build" >/dev/null 2>&1
  with_heartbeat "go get $name" go get "$modpath@$v"
  with_heartbeat "build $name" env CGO_ENABLED=0 go build -p 2 -trimpath -ldflags "$ldflags" -o "$d/bin/$out" "$pkg"
  touch "$d/.complete"
}

build_etcd() {
  build_go_main etcd "v$ETCD_VERSION" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3 etcd \
    "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCD_VERSION"
}
build_minio()   { build_go_main minio "$MINIO_VERSION" github.com/minio/minio github.com/minio/minio minio; }
# Like upstream's Makefile: stamp the Kubernetes version Helm's client libraries speak (its
# default for `helm template` without a cluster), or Helm assumes v1.20.
build_helm() {
  local f="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" p
  for p in pkg/lint/rules pkg/chartutil; do
    f="$f -X helm.sh/helm/v3/$p.k8sVersionMajor=1 -X helm.sh/helm/v3/$p.k8sVersionMinor=$HELM_K8S_MINOR"
  done
  build_go_main helm "v$HELM_VERSION" helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm helm "$f" "v$HELM_VERSION-k1.$HELM_K8S_MINOR"
}
build_coredns() { build_go_main coredns "v$COREDNS_VERSION" github.com/coredns/coredns github.com/coredns/coredns coredns; }

# The Go module version of a Prometheus 3.x release: 3.16.0 -> v0.316.0.
prometheus_module_version() {
  local major minor patch; IFS=. read -r major minor patch <<<"$1"
  echo "v0.$(( major * 100 + minor )).$patch"
}

# prometheus and promtool from one wrapper module, like upstream's .promu.yml (netgo, version
# stamped) but without the builtinassets tag: the web UI needs npm to build, and the HTTP API
# (all the tests use) is served without it. Only Kubernetes service discovery is compiled in
# (remove_all_sd,enable_kubernetes_sd; file and HTTP SD stay): the cloud SDs (AWS, Azure, GCE,
# ...) are left out.
build_prometheus() {
  local v=$PROMETHEUS_VERSION mv d; mv=$(prometheus_module_version "$v"); d=$(tool_dir prometheus "v$v")
  already_built prometheus "v$v" && { log "prometheus v$v: cached in $d"; return; }
  step "Building Prometheus v$v (prometheus, promtool) from github.com/prometheus/prometheus@$mv"
  mkdir -p "$d/src" "$d/bin" && cd "$d/src"
  [ -f go.mod ] || go mod init local/prometheusbuild >/dev/null 2>&1
  with_heartbeat "go get prometheus" go get "github.com/prometheus/prometheus@$mv"
  local f="-s -w" kv
  for kv in "Version=$v" "Revision=$mv" "Branch=HEAD" "BuildUser=continuum" "BuildDate=19700101-00:00:00"; do
    f="$f -X github.com/prometheus/common/version.$kv"
  done
  with_heartbeat "build prometheus" env CGO_ENABLED=0 go build -p 2 -trimpath \
    -tags netgo,remove_all_sd,enable_kubernetes_sd -ldflags "$f" -o "$d/bin/" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
  "$d/bin/promtool" --version 2>&1 | grep "version $v" >/dev/null || die "promtool does not report version $v"
  touch "$d/.complete"
}

# Argo CD: one binary (./cmd) that is every component, chosen by argv[0] or a subcommand
# (argocd-application-controller, argocd-repo-server, argocd-server); no web UI. Two quirks:
# - v3.6 needs Go >= 1.27: GOTOOLCHAIN=$ARGOCD_GO_TOOLCHAIN for this step only (the Go module
#   proxy serves the toolchain); every other tool builds with the local Go.
# - its go.mod has `replace github.com/argoproj/argo-cd/gitops-engine/v3 => ./gitops-engine`, and
#   a module zip leaves nested modules out: the build copies the root module's source out of the
#   module cache and puts the gitops-engine module of the same tag into ./gitops-engine.
# Redis (Argo CD's cache) comes from Debian, installed here when missing.
# Cold: about 10 min on 1 core (nice, -p 1, 2026-12 on this test bed).
build_argocd() {
  local v=$ARGOCD_VERSION d; d=$(tool_dir argocd "v$v")
  ensure_debian_packages redis-server
  if already_built argocd "v$v"; then
    install_git_verify_wrapper "$d"
    log "argocd v$v: cached in $d"; return
  fi
  step "Building Argo CD v$v (application-controller, repo-server, server: one binary) with $ARGOCD_GO_TOOLCHAIN"
  export GOTOOLCHAIN=$ARGOCD_GO_TOOLCHAIN
  local root=github.com/argoproj/argo-cd/v3 engine=github.com/argoproj/argo-cd/gitops-engine/v3
  with_heartbeat "download argo-cd" go mod download "$root@v$v" "$engine@v$v"
  local cache; cache=$(go env GOMODCACHE)
  rm -rf "$d/src" && mkdir -p "$d/bin"
  cp -r "$cache/$root@v$v" "$d/src" && cp -r "$cache/$engine@v$v" "$d/src/gitops-engine"
  chmod -R u+w "$d/src" && cd "$d/src"
  grep -q "$engine => ./gitops-engine" go.mod || die "argo-cd v$v's go.mod no longer replaces $engine with ./gitops-engine; update build_argocd"
  local f="-s -w" kv
  for kv in "version=$v" "gitTag=v$v" "gitTreeState=clean" "buildDate=1970-01-01T00:00:00Z"; do
    f="$f -X $root/common.$kv"
  done
  with_heartbeat "build argocd" nice -n 10 go build -p 1 -ldflags "$f" -o "$d/bin/argocd" ./cmd
  "$d/bin/argocd" version --client --short 2>&1 | grep "v$v" >/dev/null || die "argocd does not report v$v"
  cp manifests/crds/application-crd.yaml manifests/crds/appproject-crd.yaml "$d/"
  install_git_verify_wrapper "$d"
  touch "$d/.complete"
}

# The repo-server runs `git-verify-wrapper.sh <revision>` from $PATH for every manifest it
# generates, GPG on or off (v3.6: the deprecated signature check is unconditional), and answers
# "permission denied" when it is missing. Upstream's image ships it from hack/; so does our bin/.
install_git_verify_wrapper() {
  local d=$1
  [[ -x $d/bin/git-verify-wrapper.sh ]] && return
  [[ -f $d/src/hack/git-verify-wrapper.sh ]] || die "no $d/src/hack/git-verify-wrapper.sh: rebuild Argo CD (rm -rf $d; hack/build-tools.sh argocd)"
  install -m 0755 "$d/src/hack/git-verify-wrapper.sh" "$d/bin/git-verify-wrapper.sh"
}

build_all() {
  local t
  for t in "$@"; do
    case $t in kube|etcd|minio|helm|coredns|prometheus|argocd) ( "build_$t" ) ;; *) die "unknown tool '$t' (expected kube, etcd, minio, helm, coredns, prometheus or argocd)";; esac
  done
}

main() {
  require_go
  mkdir -p "$CACHE_DIR"
  if [ $# -gt 0 ]; then build_all "$@"; log "tools ready in $CACHE_DIR"; return; fi
  # Two lanes: Kubernetes is the long build; the others overlap with its downloads and links.
  build_all kube &
  local kube_pid=$!
  build_all etcd coredns minio helm prometheus argocd || { kill "$kube_pid" 2>/dev/null; die "building the tools failed"; }
  wait "$kube_pid" || die "building Kubernetes failed"
  log "tools ready in $CACHE_DIR"
}
main "$@"
