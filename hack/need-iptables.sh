#!/usr/bin/env bash
# need-iptables.sh — make sure iptables is installed: the Envoy suite redirects
# the test application's connections into Envoy (15001) inside its own network
# namespace, as istio-init does in a pod. Installs Debian's package when
# missing and this is root with apt-get; otherwise fails with what to do.
set -euo pipefail
if command -v iptables >/dev/null; then
	exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
	echo "need-iptables: installing Debian's iptables package"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null
	command -v iptables >/dev/null && exit 0
fi
echo "need-iptables: iptables not found; install it (Debian: apt-get install -y iptables)" >&2
exit 1
