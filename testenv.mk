# testenv.mk — the real Kubernetes API test environment (kube-apiserver + etcd)
# used by meshd's e2e tests. Included by the main Makefile.
#
#   make testenv            build bin/kube-apiserver and bin/etcd (cached; a fresh
#                           build takes ~10 minutes on 2 cores, later runs are no-ops)
#   make testenv-test       run e2e/testenv's own test, outside and inside a netns
#   make kubectl            build bin/kubectl (cached; about 40 s with a warm
#                           module cache), for e2e tests that apply manifests
#   make testenv-clean      remove the binaries
#
# Each tool is its own Go module under hack/tools/ so that k8s.io/kubernetes'
# dependency graph stays out of meshd's go.mod. A binary is rebuilt only when
# its module's go.mod, go.sum or main.go is newer than it.

# Keep whatever default goal the including Makefile has (or lets come next).
_testenv_default_goal := $(.DEFAULT_GOAL)

GO ?= go
TESTENV_BIN_DIR ?= bin
TESTENV_TOOLS := hack/tools
TESTENV_KUBE_APISERVER := $(TESTENV_BIN_DIR)/kube-apiserver
TESTENV_ETCD := $(TESTENV_BIN_DIR)/etcd
TESTENV_KUBECTL := $(TESTENV_BIN_DIR)/kubectl

# The Kubernetes release pinned in hack/tools/kube-apiserver/go.mod, stamped into
# the binary the way upstream's build does (otherwise /version says v0.0.0-master).
TESTENV_KUBE_VERSION := $(shell awk '$$1=="k8s.io/kubernetes" && $$2 ~ /^v/ {print $$2; exit}' $(TESTENV_TOOLS)/kube-apiserver/go.mod)
TESTENV_KUBE_MINOR := $(word 2,$(subst ., ,$(TESTENV_KUBE_VERSION)))
TESTENV_KUBE_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(TESTENV_KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(TESTENV_KUBE_MINOR) \
	-X k8s.io/component-base/version.gitTreeState=clean

# Static, reproducible builds; GOWORK=off so a go.work at the root cannot pull
# the tool modules into the main module's build list (or the other way round).
TESTENV_GOENV := CGO_ENABLED=0 GOWORK=off

.PHONY: testenv testenv-test testenv-clean kubectl

## testenv: build (or reuse) bin/kube-apiserver and bin/etcd for the e2e tests.
testenv: $(TESTENV_KUBE_APISERVER) $(TESTENV_ETCD)

$(TESTENV_ETCD): $(addprefix $(TESTENV_TOOLS)/etcd/,go.mod go.sum main.go)
	@mkdir -p $(@D)
	cd $(TESTENV_TOOLS)/etcd && $(TESTENV_GOENV) $(GO) build -trimpath -ldflags='-s -w' -o $(abspath $@).tmp .
	mv $@.tmp $@

$(TESTENV_KUBE_APISERVER): $(addprefix $(TESTENV_TOOLS)/kube-apiserver/,go.mod go.sum main.go)
	@mkdir -p $(@D)
	cd $(TESTENV_TOOLS)/kube-apiserver && $(TESTENV_GOENV) $(GO) build -trimpath -ldflags='$(TESTENV_KUBE_LDFLAGS)' -o $(abspath $@).tmp .
	mv $@.tmp $@

## kubectl: build (or reuse) bin/kubectl, the same release as the API server.
## Its own module (hack/tools/kubectl) builds k8s.io/kubernetes/cmd/kubectl
## itself (a go.mod tool directive); kubectl also reads client-go's version.
kubectl: $(TESTENV_KUBECTL)

TESTENV_KUBECTL_LDFLAGS := $(TESTENV_KUBE_LDFLAGS) \
	-X k8s.io/client-go/pkg/version.gitVersion=$(TESTENV_KUBE_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=$(TESTENV_KUBE_MINOR) \
	-X k8s.io/client-go/pkg/version.gitTreeState=clean

$(TESTENV_KUBECTL): $(addprefix $(TESTENV_TOOLS)/kubectl/,go.mod go.sum)
	@mkdir -p $(@D)
	cd $(TESTENV_TOOLS)/kubectl && $(TESTENV_GOENV) $(GO) build -trimpath \
	  -ldflags='$(TESTENV_KUBECTL_LDFLAGS)' \
	  -o $(abspath $@).tmp k8s.io/kubernetes/cmd/kubectl
	mv $@.tmp $@

## testenv-test: run the test environment's own test outside, then inside, a network namespace.
testenv-test: testenv
	MESHD_REQUIRE_TESTENV=1 MESHD_TESTENV_BIN=$(abspath $(TESTENV_BIN_DIR)) $(GO) test -count=1 -v ./e2e/testenv/
	MESHD_REQUIRE_TESTENV=1 MESHD_TESTENV_BIN=$(abspath $(TESTENV_BIN_DIR)) \
	  hack/netns-run.sh $(GO) test -count=1 -v ./e2e/testenv/

testenv-clean:
	rm -f $(TESTENV_KUBE_APISERVER) $(TESTENV_ETCD) $(TESTENV_KUBECTL)

.DEFAULT_GOAL := $(_testenv_default_goal)
