#!/usr/bin/env bash
# envoy-demo.sh — the bundled demo mesh with a real Envoy sidecar and real
# traffic through it, in a network namespace of its own (make demo-envoy).
#
# Inside the namespace: meshd serves hack/demo; two tiny HTTP servers play
# reviews-v1 (10.1.2.1:9080) and reviews-v2 (10.1.2.2:9080), the demo's pod
# addresses; bin/envoy runs as the sidecar of shop's frontend, bootstrapped
# by `meshd bootstrap`, as Istio's proxy user 1337; iptables redirects the
# application's connections to ClusterIPs into Envoy's 15001, as istio-init
# does. Then curl calls reviews' ClusterIP 20 times and the answers show the
# demo VirtualService's 80/20 split. Everything stops when the script ends;
# no packet leaves the namespace.
#
# Needs root (unshare, ip, iptables), python3, and bin/meshd and bin/envoy
# (make build envoy).
set -euo pipefail
# The script's own path, absolute: it re-runs itself after the cd below
# (e.g. started as `cd hack && ./envoy-demo.sh`).
self=$(realpath "$0")
cd "$(dirname "$self")/.."
if [ -z "${MESHD_DEMO_NETNS:-}" ]; then
	for tool in unshare ip iptables setpriv curl python3; do
		command -v "$tool" >/dev/null || { echo "envoy-demo: '$tool' not found" >&2; exit 1; }
	done
	[ -x bin/meshd ] && [ -x bin/envoy ] || { echo "envoy-demo: run 'make build envoy' first" >&2; exit 1; }
	exec env MESHD_DEMO_NETNS=1 unshare --net -- "$self" "$@"
fi

tmp=$(mktemp -d)
chmod 0755 "$tmp"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT

ip link set lo up
ip addr add 10.1.0.0/16 dev lo       # the demo's pod addresses
ip route add local 10.96.0.0/16 dev lo # the demo's ClusterIPs

bin/meshd serve --config-dir hack/demo --xds-address 127.0.0.1:15010 --admin-address 127.0.0.1:15014 \
	>"$tmp/meshd.log" 2>&1 &
pids+=($!)
for v in 1 2; do
	python3 - "10.1.2.$v" "reviews-v$v" >"$tmp/reviews-v$v.log" 2>&1 <<'PY' &
import http.server, sys
addr, name = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (name + "\n").encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer((addr, 9080), H).serve_forever()
PY
	pids+=($!)
done

bin/meshd bootstrap --namespace shop --pod-name frontend-0 --ip 10.1.1.10 --labels app=frontend \
	--xds-address 127.0.0.1:15010 >"$tmp/sidecar.yaml"
setpriv --reuid 1337 --regid 1337 --clear-groups \
	bin/envoy -c "$tmp/sidecar.yaml" --disable-hot-restart --log-level warn >"$tmp/envoy.log" 2>&1 &
envoy_pid=$!
pids+=("$envoy_pid")

iptables -t nat -A OUTPUT -p tcp -m owner --uid-owner 1337 -j RETURN
iptables -t nat -A OUTPUT -p tcp -d 10.96.0.0/16 -j REDIRECT --to-ports 15001

ready=
for _ in $(seq 100); do
	curl -sf -o /dev/null localhost:15021/healthz/ready && { ready=1; break; }
	kill -0 "$envoy_pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$ready" ]; then
	if kill -0 "$envoy_pid" 2>/dev/null; then
		echo "envoy-demo: Envoy did not become ready (localhost:15021/healthz/ready) in 10 s" >&2
	else
		echo "envoy-demo: Envoy exited before it became ready" >&2
	fi
	for log in envoy meshd; do
		echo "--- last lines of $log.log:" >&2
		tail -n 30 "$tmp/$log.log" >&2 || true
	done
	exit 1
fi
echo "Envoy: $(curl -s localhost:15000/server_info | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')," \
	"rejected updates: $(curl -s localhost:15000/stats | grep -c 'update_rejected: [1-9]' || true)"
echo "20 calls to http://reviews.shop.svc.cluster.local:9080 (ClusterIP 10.96.1.20) through Envoy:"
for _ in $(seq 20); do
	curl -s -H 'Host: reviews.shop.svc.cluster.local:9080' http://10.96.1.20:9080/
done | sort | uniq -c
