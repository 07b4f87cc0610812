# Continuum — developer commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
STATE_DIR ?= /var/lib/continuum-cluster
CACHE_DIR ?= /var/cache/continuum
include hack/versions.env
TEST_WORKERS ?= 2
HELM ?= $(CACHE_DIR)/helm-v$(HELM_VERSION)-k1.$(HELM_K8S_MINOR)/bin/helm
export KUBECONFIG ?= $(STATE_DIR)/kubeconfig

##@ Setup
.PHONY: help
help: ## Show this help
	@awk 'BEGIN{FS=":.*##"} /^##@/{printf "\n%s\n", substr($$0,5)} /^[a-zA-Z_-]+:.*##/{printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -U pip
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

.PHONY: setup
setup: $(VENV)/.installed ## Create the virtualenv with the package and dev tools

##@ Develop
.PHONY: manifests
manifests: setup ## Regenerate crds/ from the API types, then the chart's CRDs/RBAC and deploy/ bundle
	$(PY) -m continuum.api.crdgen --out crds
	$(PY) -m continuum.api.docgen --out docs/crd-reference.md
	hack/chart-crds.sh
	hack/render-bundle.sh

.PHONY: chart-lint
chart-lint: ## helm lint --strict the chart (cluster-wide and namespaced)
	$(HELM) lint --strict charts/continuum
	$(HELM) lint --strict charts/continuum --set 'watchNamespaces={a,b}'

.PHONY: lint
lint: setup ## ruff, mypy --strict, the import-layer check and shellcheck over hack/ and .ci/
	$(VENV)/bin/ruff check operator tests
	$(VENV)/bin/ruff format --check operator tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	hack/shellcheck.sh

.PHONY: unit
unit: setup browser ## Unit tests only (no cluster; installs chromium for the report's browser test)
	$(VENV)/bin/pytest tests/unit -q

.PHONY: test
test: setup tools browser ## All tests: lint, unit, cluster (builds tools and brings the local cluster up when needed)
	$(MAKE) lint
	# CI lengths: the load test 180 s (make test-load: 600), the API fault proxy's workload 90 s
	# (make test-faults: 600), 3 leader kills in the HA test (make test-chaos: 10).
	# Two parts: every test not marked serial, two at a time (pytest-xdist, a module per worker:
	# the cluster tier mostly waits on pods and timers), then the serial ones alone. Both parts
	# run whatever the first one's result; the target fails when either failed.
	export CONTINUUM_LOAD_SECONDS=$${CONTINUUM_LOAD_SECONDS:-180} CONTINUUM_FAULT_SECONDS=$${CONTINUUM_FAULT_SECONDS:-90} \
	  CONTINUUM_HA_KILLS=$${CONTINUUM_HA_KILLS:-3}; rc=0; \
	$(VENV)/bin/pytest tests -q -m 'not serial' -n $(TEST_WORKERS) --dist loadscope --durations=25 || rc=$$?; \
	$(VENV)/bin/pytest tests -q -m serial --durations=12 || rc=$$?; \
	exit $$rc

.PHONY: test-reliability
test-reliability: setup tools ## Only the reliability and security suite (bad input, fuzz, tampering, RBAC, secrets)
	$(VENV)/bin/pytest tests -q -m reliability

.PHONY: test-load
test-load: setup tools ## Only the load tests (the model server under load for CONTINUUM_LOAD_SECONDS, default 600)
	$(VENV)/bin/pytest tests -q -m load

.PHONY: test-chaos
test-chaos: setup tools ## Only the fault-injection tests (operator kills, API server and MinIO outages; CONTINUUM_HA_KILLS leader kills, default here 10)
	CONTINUUM_HA_KILLS=$${CONTINUUM_HA_KILLS:-10} $(VENV)/bin/pytest tests -q -m chaos

.PHONY: test-faults
test-faults: setup tools ## Only the API fault proxy test, full length (CONTINUUM_FAULT_SECONDS, default here 600)
	CONTINUUM_FAULT_SECONDS=$${CONTINUUM_FAULT_SECONDS:-600} $(VENV)/bin/pytest tests -q -m faults

##@ Local cluster (real Kubernetes built from source; needs root)
.PHONY: browser
browser: ## Install Debian's chromium (the HTML drift report's browser test)
	hack/browser.sh

.PHONY: tools
tools: ## Build Kubernetes, etcd, MinIO, CoreDNS, Helm, Prometheus and Argo CD from the Go module proxy (cached)
	hack/build-tools.sh

.PHONY: cluster-up
cluster-up: ## Start etcd, the control plane, a node (containerd+kubelet+kube-proxy), CoreDNS, MinIO
	hack/cluster-up.sh

.PHONY: cluster-down
cluster-down: ## Stop the cluster and undo every host change
	hack/cluster-down.sh

.PHONY: image
image: ## Build the project image offline and load it into the cluster's containerd
	hack/image.sh

.PHONY: kind-up
kind-up: ## For machines with Docker and internet: a kind cluster with the same kubeconfig contract
	hack/kind-up.sh

##@ Try it
.PHONY: demo
demo: setup ## Run the demo (local cluster; DEMO_CLUSTER=current IMAGE=... MINIO_IMAGE=...: your kube context)
	DEMO_KUBECONFIG='$(if $(filter file,$(origin KUBECONFIG)),,$(KUBECONFIG))' hack/demo.sh
