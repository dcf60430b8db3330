SHELL := /bin/bash
# meshd — see README.md. `make run` serves the bundled demo; `make test` runs everything.
GO       ?= go
BIN      := bin
MESHD    := $(BIN)/meshd
DEMO_DIR ?= hack/demo
# Test timeout for the whole suite (unit + golden + e2e).
TEST_TIMEOUT ?= 20m

.PHONY: all build run test vet unit e2e e2e-file e2e-envoy-golden e2e-kube golden-update fmt clean bench iptables demo-envoy pilot-agent

# kube-apiserver and etcd for the e2e suite (make testenv).
include testenv.mk
# Real Envoy for the e2e suites and the golden validation (make envoy).
include envoy.mk
# Istio's real node agent, for VM-style sidecars (make pilot-agent).
include pilotagent.mk

all: build

# meshd is linked statically (CGO_ENABLED=0): the injector copies it into
# Job pods whose images may have no glibc (alpine, distroless-static).
build:
	CGO_ENABLED=0 $(GO) build -o $(MESHD) ./cmd/meshd
	$(GO) build -o $(BIN)/meshctl ./cmd/meshctl

## run: build meshd and serve the bundled demo mesh (ADS :15010, admin :15014).
run: build
	@echo "meshd: ADS (plaintext) on :15010, admin on http://localhost:15014 (try /debug/registryz)"
	$(MESHD) serve --config-dir $(DEMO_DIR)

## test: vet, unit + golden tests with -race, and the end-to-end suite.
test: vet unit e2e

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# internal/bootstrap's tests run `envoy --mode validate` on what it prints.
unit: envoy
	MESHD_ENVOY_BIN=$(abspath $(ENVOY)) $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -v /e2e)

## e2e: the end-to-end suites: file provider, every golden case in real Envoy,
## then the real Kubernetes API.
e2e: e2e-file e2e-envoy-golden e2e-kube

e2e-file: build envoy pilot-agent
	MESHD_BIN=$(abspath $(MESHD)) MESHD_ENVOY_BIN=$(abspath $(ENVOY)) MESHD_PILOT_AGENT_BIN=$(abspath $(PILOT_AGENT)) $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -run '$(E2E_RUN)' -v ./e2e/

# Every translate/testdata golden case loaded into real Envoy over ADS
# (e2e/envoygolden); it runs in its own network namespace like e2e-kube (DNS
# clusters, listeners that bind), so the test binary is compiled outside it.
e2e-envoy-golden: envoy
	$(GO) test -race -c -o $(BIN)/e2e-envoygolden.test ./e2e/envoygolden
	cd e2e/envoygolden && MESHD_ENVOY_BIN=$(abspath $(ENVOY)) ../../hack/netns-run.sh $(abspath $(BIN))/e2e-envoygolden.test -test.count=1 -test.v -test.parallel 4 -test.run '$(E2E_RUN)' -test.timeout $(TEST_TIMEOUT)

# The Kubernetes suites run in their own network namespace (hack/netns-run.sh),
# where 10.250.0.0/16 is local: test binaries are compiled outside it first.
# E2E_RUN selects tests by name (go test -run), e.g. make e2e-kube E2E_RUN=TestCanary.
E2E_RUN ?= .
# grpc-go's xDS client sends a service-account token to the secure port only
# with its JWT call credentials, which it enables by this variable.
# kubectl (make kubectl) applies `meshd manifest` in e2e/kube/install_test.go.
E2E_ENV := MESHD_BIN=$(abspath $(MESHD)) MESHD_REQUIRE_TESTENV=1 MESHD_TESTENV_BIN=$(abspath $(BIN)) \
	MESHD_ENVOY_BIN=$(abspath $(ENVOY)) MESHD_FAULTS_BIN=$(abspath $(BIN))/meshd-faults \
	MESHD_PILOT_AGENT_BIN=$(abspath $(PILOT_AGENT)) GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS=true \
	MESHD_KUBECTL_BIN=$(abspath $(TESTENV_KUBECTL))
# The Envoy suite (e2e/kube/envoy_*_test.go) runs real Envoy sidecars and
# iptables interception in the same namespace.
e2e-kube: build testenv kubectl envoy iptables pilot-agent
	$(GO) build -tags meshd_faults -o $(BIN)/meshd-faults ./cmd/meshd
	$(GO) test -c -o $(BIN)/e2e-testenv.test ./e2e/testenv
	$(GO) test -race -c -o $(BIN)/e2e-kube.test ./e2e/kube
	cd e2e/testenv && $(E2E_ENV) ../../hack/netns-run.sh $(abspath $(BIN))/e2e-testenv.test -test.count=1 -test.v
	cd e2e/kube && $(E2E_ENV) ../../hack/netns-run.sh $(abspath $(BIN))/e2e-kube.test -test.count=1 -test.v -test.run '$(E2E_RUN)' -test.timeout $(TEST_TIMEOUT)

## bench: meshd at scale against the real Kubernetes API (README, Performance):
## 500 services, 5,000 endpoints, 1,000 proxies, delta then state of the world
## on the same mesh, printed side by side (about 3 minutes after make testenv);
## results in hack/bench-results/. BENCH_FLAGS, e.g.:
##   --sotw | --delta | --protocols sotw,delta   one protocol, or another order
##   --sidecar-scope     also the scenario with a Sidecar (./*, istio-system/*) per namespace
##   --runs 3            ranges over 3 runs;  --reconnect=false  skip the restart phase
##   --services 1000 --endpoints 10000 --proxies 2000   issue 18's scale (5000 proxies too)
BENCH_FLAGS ?=
bench: build testenv
	$(GO) build -o $(BIN)/bench ./hack/bench
	$(BIN)/bench --meshd $(MESHD) --testenv-bin $(BIN) $(BENCH_FLAGS)

## demo-envoy: the demo mesh with a real Envoy sidecar and curl through it, in
## a network namespace of its own (root; hack/envoy-demo.sh).
demo-envoy: build envoy iptables
	hack/envoy-demo.sh

## iptables: install Debian's iptables if missing (the Envoy suite's interception).
iptables:
	@hack/need-iptables.sh

## golden-update: regenerate translate/testdata goldens.
golden-update:
	$(GO) test ./translate/ -run TestGolden -update

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
