package main

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestState: istioctl's statuses from meshd's nonces and NACK count; a
// nackedNonce, when meshd reports one, tells NACKED from STALE exactly.
func TestState(t *testing.T) {
	for _, c := range []struct {
		name string
		ts   typeStatus
		ok   bool
		want string
	}{
		{"never subscribed", typeStatus{}, false, "NOT SENT"},
		{"nothing sent", typeStatus{}, true, "NOT SENT"},
		{"acked", typeStatus{SentNonce: "3", AckedNonce: "3"}, true, "SYNCED"},
		{"sent, not acked", typeStatus{SentNonce: "4", AckedNonce: "3"}, true, "STALE"},
		{"nacked", typeStatus{SentNonce: "4", AckedNonce: "3", Nacks: 1}, true, "NACKED"},
		{"acked after a nack", typeStatus{SentNonce: "5", AckedNonce: "5", Nacks: 1}, true, "SYNCED"},
		{"nacked nonce is the last", typeStatus{SentNonce: "4", NackedNonce: "4", Nacks: 1}, true, "NACKED"},
		{"nacked an older one", typeStatus{SentNonce: "5", NackedNonce: "4", Nacks: 1}, true, "STALE"},
	} {
		assert.Equal(t, c.want, state(c.ts, c.ok), c.name)
	}
}

// TestParseArgs: flags anywhere among the arguments, "--" ends them.
func TestParseArgs(t *testing.T) {
	fs := newFlagSet("x")
	port := fs.Int("port", 0, "")
	fqdn := fs.String("fqdn", "", "")
	pos, err := parseArgs(fs, []string{"clusters", "--port", "80", "p.ns", "--fqdn=a", "--", "--b"})
	require.NoError(t, err)
	assert.Equal(t, []string{"clusters", "p.ns", "--b"}, pos)
	assert.Equal(t, 80, *port)
	assert.Equal(t, "a", *fqdn)
	_, err = parseArgs(fs, []string{"p", "--nope"})
	assert.ErrorContains(t, err, "-nope")
	_, err = parseArgs(fs, []string{"-h"})
	assert.ErrorIs(t, err, flag.ErrHelp)
}

// TestProxyNotFound: close matches by edit distance, substring, or a pod
// name prefix in the same namespace; none for a stranger.
func TestProxyNotFound(t *testing.T) {
	ids := []string{"sidecar~10.0.0.1~frontend-v1-0.shop~shop.svc.cluster.local", "reviews-v1-0.shop",
		"router~10.0.0.2~ingress-0.shop~shop.svc.cluster.local", "ledger-0.bank"}
	for name, want := range map[string][]string{
		"frontend.shop":       {"frontend-v1-0.shop"},
		"frontend-v1-0":       {"frontend-v1-0.shop"},
		"reviews-v1-1.shop":   {"reviews-v1-0.shop"},
		"ledger-0.shop":       {"ledger-0.bank"},
		"frontend.bank":       nil,
		"payments-7f9c.vault": nil,
	} {
		err := proxyNotFound(name, "127.0.0.1:15014", ids)
		var nf *notFoundError
		require.ErrorAs(t, err, &nf)
		assert.Equal(t, want, nf.close, name)
	}
}

// TestDescribeDomains: istioctl's DOMAINS column.
func TestDescribeDomains(t *testing.T) {
	assert.Equal(t, "", describeDomains(nil))
	assert.Equal(t, "*", describeDomains([]string{"*"}))
	assert.Equal(t, "reviews.shop.svc.cluster.local., reviews + 2 more...", describeDomains([]string{
		"reviews.shop.svc.cluster.local", "reviews.shop.svc.cluster.local.", "reviews", "reviews.shop.svc", "reviews.shop", "10.96.1.20",
		"reviews.shop.svc.cluster.local:9080", "reviews:9080"}))
	assert.Equal(t, "a.example, [fd00:10:96::7fc7]", describeDomains([]string{"a.example", "a.example:80", "[fd00:10:96::7fc7]", "[fd00:10:96::7fc7]:80"}))
}

// TestUnknownTypes: a dump whose filters have types this build does not
// know (an Istio Wasm filter, a newer extension) is read; the unknown
// config prints as its type alone.
func TestUnknownTypes(t *testing.T) {
	dump := `{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "static_listeners": [{"listener": {
	  "@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "stats",
	  "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15090}},
	  "filter_chains": [{"filters": [
	    {"name": "istio.stats", "typed_config": {"@type": "type.googleapis.com/stats.PluginConfig", "disable_host_header_fallback": true}},
	    {"name": "envoy.filters.network.tcp_proxy", "typed_config": {
	      "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix": "s", "cluster": "stats_backend",
	      "future_field": {"x": 1}}}]}]}}]}]}`
	d, err := parseDump([]byte(dump))
	require.NoError(t, err)
	require.Len(t, d.listeners, 1)
	var out bytes.Buffer
	require.NoError(t, printListeners(&out, d.listeners, true))
	assert.Contains(t, out.String(), "0.0.0.0   15090 ALL   Cluster: stats_backend")
	out.Reset()
	require.NoError(t, printProtos(&out, d.listeners, "json"))
	assert.Contains(t, out.String(), `"@type": "type.googleapis.com/stats.PluginConfig"`)
	assert.NotContains(t, out.String(), "disable_host_header_fallback")
	assert.True(t, strings.HasPrefix(out.String(), "[\n    {"), out.String())
}

// TestWhatIfDispatch: what-if runs whatIf when a build sets it (whatif.go),
// and is a usage error without it.
func TestWhatIfDispatch(t *testing.T) {
	defer func(f func([]string, io.Writer, io.Writer) int) { whatIf = f }(whatIf)
	var got []string
	whatIf = func(args []string, _, _ io.Writer) int { got = args; return 3 }
	assert.Equal(t, 3, run([]string{"what-if", "-f", "x.yaml"}, io.Discard, io.Discard))
	assert.Equal(t, []string{"-f", "x.yaml"}, got)
	whatIf = nil
	var stderr bytes.Buffer
	assert.Equal(t, exitUsage, run([]string{"what-if", "-f", "x.yaml"}, io.Discard, &stderr))
	assert.Equal(t, "what-if: not available in this build\n", stderr.String())
}
