#!/usr/bin/env bash
# netns-run.sh CMD [ARG...] — run CMD in a fresh network namespace.
#
# Kubernetes refuses loopback addresses in EndpointSlices, so meshd's e2e suite
# runs where lo is up and also carries 10.250.0.0/16: every 10.250.x.y address
# is local there, usable as a pod or workload IP, and no packet leaves the
# namespace. 127.0.0.1 works as usual (etcd and kube-apiserver bind there).
#
# There is no network inside: build binaries (make build testenv) and download
# modules before. GOPROXY=off is set inside so a missing module fails at once.
# CMD sees MESHD_NETNS_CIDR=10.250.0.0/16.
#
# Needs unshare (util-linux) and ip (iproute2; in CI: apt-get install -y
# iproute2), and root — or, as a normal user, unprivileged user namespaces,
# in which case it maps the caller to root inside.
set -euo pipefail

if [ $# -eq 0 ]; then
	echo "usage: $0 CMD [ARG...]" >&2
	exit 2
fi
for tool in unshare ip; do
	if ! command -v "$tool" >/dev/null; then
		echo "$0: '$tool' not found (unshare: util-linux; ip: apt-get install -y iproute2)" >&2
		exit 1
	fi
done

userns=()
if [ "$(id -u)" -ne 0 ]; then
	userns=(--map-root-user)
fi

export MESHD_NETNS_CIDR=10.250.0.0/16
export GOPROXY=off
exec unshare --net "${userns[@]}" -- bash -euo pipefail -c '
	ip link set lo up
	ip addr add "$MESHD_NETNS_CIDR" dev lo
	exec "$@"
' netns-run "$@"
