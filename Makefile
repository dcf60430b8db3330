SHELL := /bin/bash
# meshd — see README.md. `make run` serves the bundled demo; `make test` runs everything.
GO       ?= go
BIN      := bin
MESHD    := $(BIN)/meshd
DEMO_DIR ?= hack/demo
# Test timeout for the whole suite (unit + golden + e2e).
TEST_TIMEOUT ?= 20m

.PHONY: all build run test vet unit e2e golden-update fmt clean

all: build

build:
	$(GO) build -o $(MESHD) ./cmd/meshd

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

unit:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -v /e2e)

e2e: build
	MESHD_BIN=$(abspath $(MESHD)) $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v ./e2e/...

## golden-update: regenerate translate/testdata goldens.
golden-update:
	$(GO) test ./translate/ -run TestGolden -update

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
