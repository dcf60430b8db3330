# pilotagent.mk — Istio's real node agent (pilot-agent) for the e2e suites
# that run a VM-style sidecar against meshd's secure port (hack/pilot-agent.md).
# Included by the main Makefile.
#
#   make pilot-agent        build (or reuse) bin/pilot-agent and print its version
#   make pilot-agent-clean  remove it (and its bootstrap template)
#
# The agent is `go install`ed from the Go module proxy at the pinned
# istio.io/istio version (the only one served here), in a temporary
# directory outside this repository with GOWORK=off, so meshd's go.mod and
# go.sum never see istio.io/istio. A fresh build takes about a minute; later
# runs are no-ops. bin/pilot-agent is rebuilt only when the pin below
# changes: bin/.pilot-agent.pin holds the pin it was built from and is
# rewritten only when its content differs (edits elsewhere in this file do
# not trigger a rebuild). A failed build fails make: there is no fallback.
#
# The agent renders Envoy's bootstrap from a template it reads at run time
# (./var/lib/istio/envoy/envoy_bootstrap_tmpl.json in Istio's proxy image,
# not compiled in): the module's tools/packaging/common/envoy_bootstrap.json
# is copied to bin/pilot-agent.bootstrap.json for `pilot-agent proxy
# --templateFile` (e2e/harness/pilotagent.go finds it there).

_pilot_agent_default_goal := $(.DEFAULT_GOAL)

GO ?= go
PILOT_AGENT_MODULE  := istio.io/istio
PILOT_AGENT_PKG     := $(PILOT_AGENT_MODULE)/pilot/cmd/pilot-agent
PILOT_AGENT_VERSION := v0.0.0-20260827124520-eed52ebb66ad
# Stamped into the binary as Istio's own builds do (common/scripts/
# report_build_info.sh): the module's VERSION file (1.31) plus "-dev", and
# the commit of the pseudo-version. The agent sends it to the control plane
# as node metadata ISTIO_VERSION; unstamped it would say "unknown".
PILOT_AGENT_ISTIO_VERSION := 1.31-dev
PILOT_AGENT_REVISION      := $(lastword $(subst -, ,$(PILOT_AGENT_VERSION)))
PILOT_AGENT_BIN_DIR ?= bin
PILOT_AGENT         := $(PILOT_AGENT_BIN_DIR)/pilot-agent
PILOT_AGENT_PIN     := $(PILOT_AGENT_BIN_DIR)/.pilot-agent.pin
PILOT_AGENT_TEMPLATE := $(PILOT_AGENT_BIN_DIR)/pilot-agent.bootstrap.json

_pilot_agent_x := istio.io/istio/pkg/version
PILOT_AGENT_LDFLAGS := -s -w \
	-X $(_pilot_agent_x).buildVersion=$(PILOT_AGENT_ISTIO_VERSION) \
	-X $(_pilot_agent_x).buildGitRevision=$(PILOT_AGENT_REVISION) \
	-X $(_pilot_agent_x).buildStatus=Clean \
	-X $(_pilot_agent_x).buildTag=$(PILOT_AGENT_VERSION)
# What the binary is a function of: a change here rebuilds it.
_pilot_agent_pin := $(PILOT_AGENT_PKG)@$(PILOT_AGENT_VERSION) $(PILOT_AGENT_LDFLAGS)

.PHONY: pilot-agent pilot-agent-clean _pilot-agent-pin

## pilot-agent: build (or reuse) the pinned Istio agent into bin/pilot-agent.
pilot-agent: $(PILOT_AGENT) $(PILOT_AGENT_TEMPLATE)
	@$(PILOT_AGENT) version --short 2>/dev/null

$(PILOT_AGENT): $(PILOT_AGENT_PIN)
	@mkdir -p $(@D)
	@rm -rf $@.gobin
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && \
	  CGO_ENABLED=0 GOWORK=off GOFLAGS= GOBIN=$(abspath $@.gobin) \
	  $(GO) install -trimpath -ldflags='$(PILOT_AGENT_LDFLAGS)' $(PILOT_AGENT_PKG)@$(PILOT_AGENT_VERSION)
	mv $@.gobin/pilot-agent $@
	@rm -rf $@.gobin

# go mod download prints the module's directory in the module cache (it is
# already there after the install; otherwise this downloads it).
$(PILOT_AGENT_TEMPLATE): $(PILOT_AGENT_PIN)
	@mkdir -p $(@D)
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	dir=$$(cd "$$tmp" && GOWORK=off GOFLAGS= $(GO) mod download -json $(PILOT_AGENT_MODULE)@$(PILOT_AGENT_VERSION) | \
	  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$$/\1/p') && test -n "$$dir" && \
	  cp "$$dir/tools/packaging/common/envoy_bootstrap.json" $@.tmp
	chmod 0644 $@.tmp
	mv $@.tmp $@

# The pin file is checked on every run but rewritten (made newer than the
# binary) only when the pin differs from what it holds.
$(PILOT_AGENT_PIN): _pilot-agent-pin
	@mkdir -p $(@D)
	@echo '$(_pilot_agent_pin)' | cmp -s - $@ || echo '$(_pilot_agent_pin)' > $@

pilot-agent-clean:
	rm -rf $(PILOT_AGENT) $(PILOT_AGENT_PIN) $(PILOT_AGENT).gobin $(PILOT_AGENT_TEMPLATE)

.DEFAULT_GOAL := $(_pilot_agent_default_goal)
