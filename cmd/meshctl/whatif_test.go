package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshd/meshd/discovery/file"
	"github.com/meshd/meshd/internal/admin"
	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/xds"
)

// The what-if goldens run against meshd's own ADS server and admin handler,
// in process, serving hack/demo (plus a Sidecar keeping bank to itself)
// to an Envoy sidecar of shop's frontend and a proxyless gRPC client of
// bank; the changes are testdata/whatif. -update rewrites the goldens.

const whatIfData = "testdata/whatif"

var whatIfCases = []struct{ name, args string }{
	{"whatif-canary", "what-if -f {data}/canary.yaml --meshd-addr {meshd}"},
	{"whatif-canary-all", "what-if -f {data}/canary.yaml --all --diff=false --meshd-addr {meshd}"},
	{"whatif-canary-bank-json", "what-if -f {data}/canary.yaml --namespace bank -o json --meshd-addr {meshd}"},
	{"whatif-unchanged", "what-if -f {data}/unchanged.yaml --meshd-addr {meshd}"},
	{"whatif-als", "what-if -f {data}/als.yaml --meshd-addr {meshd}"},
	{"whatif-als-fixed", "what-if -f {data}/als-fixed.yaml --proxy frontend-v1-0.shop --meshd-addr {meshd}"},
	{"whatif-invalid", "what-if -f {data}/invalid.yaml --diff=false --meshd-addr {meshd}"},
	{"whatif-delete", "what-if --delete -f {data}/subset-dr.yaml --diff=false --meshd-addr {meshd}"},
	{"whatif-unknown-proxy", "what-if -f {data}/canary.yaml --proxy nobody.shop --meshd-addr {meshd}"},
	{"whatif-usage-no-file", "what-if --all"},
	{"whatif-usage-two-selectors", "what-if -f x.yaml --all --namespace shop"},
	{"whatif-help", "help what-if"},
	{"whatif-unreachable", "what-if -f {data}/canary.yaml --meshd-addr 127.0.0.1:1"},
}

func TestWhatIfGolden(t *testing.T) {
	t.Setenv("MESHD_ADDR", "")
	addr := whatIfMeshd(t)
	for _, c := range whatIfCases {
		t.Run(c.name, func(t *testing.T) {
			args := strings.NewReplacer("{meshd}", addr, "{data}", whatIfData).Replace(c.args)
			var stdout, stderr bytes.Buffer
			code := run(strings.Fields(args), &stdout, &stderr)
			got := fmt.Sprintf("$ meshctl %s\n%s", c.args, stdout.String())
			if stderr.Len() > 0 {
				got += "--- stderr\n" + stderr.String()
			}
			got += fmt.Sprintf("--- exit %d\n", code)
			got = strings.ReplaceAll(got, addr, goldenMeshd)
			path := filepath.Join("testdata", "golden", c.name+".txt")
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
				return
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "no golden file: run go test ./cmd/meshctl/ -update")
			assert.Equal(t, string(want), got)
		})
	}
}

// whatIfMeshd serves the demo mesh's admin endpoints with two proxies
// connected, and returns the admin address.
func whatIfMeshd(t *testing.T) string {
	dir := t.TempDir()
	for _, name := range []string{"namespaces.yaml", "shop-frontend.yaml", "shop-reviews.yaml", "shop-reviews-routing.yaml", "bank.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "hack", "demo", name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	b, err := os.ReadFile(filepath.Join(whatIfData, "bank-sidecar.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bank-sidecar.yaml"), b, 0o644))
	store := model.NewStore()
	require.NoError(t, file.New(dir, store).Load())
	require.Empty(t, store.Current().Errors())

	srv := xds.New(xds.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv.PushSnapshot(store.Current())
	ctx, cancel := context.WithCancel(context.Background())
	g := grpc.NewServer(xds.Codec())
	srv.Register(ctx, g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = g.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(); cancel(); g.Stop() })
	openStream(t, ctx, conn, "sidecar~10.1.1.10~frontend-v1-0.shop~shop.svc.cluster.local",
		map[string]any{"NAMESPACE": "shop", "LABELS": map[string]any{"app": "frontend", "version": "v1"}})
	openStream(t, ctx, conn, "sidecar~10.1.3.9~teller.bank~bank.svc.cluster.local",
		map[string]any{"NAMESPACE": "bank", "GENERATOR": "grpc"})
	require.Eventually(t, func() bool { return len(srv.Proxies()) == 2 }, 5*time.Second, 10*time.Millisecond)

	h := admin.New(srv, store, prometheus.NewRegistry())
	h.EnableWhatIf(file.ChangeDecoder(file.ChangeOptions{}))
	web := httptest.NewServer(h)
	t.Cleanup(web.Close)
	return strings.TrimPrefix(web.URL, "http://")
}

// openStream opens an ADS stream as a node and waits for its clusters.
func openStream(t *testing.T, ctx context.Context, conn *grpc.ClientConn, id string, md map[string]any) {
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	meta, err := structpb.NewStruct(md)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: id, Metadata: meta}, TypeUrl: resourcev3.ClusterType}))
	_, err = stream.Recv()
	require.NoError(t, err)
}

// TestWhatIfReportMirrorsMeshd: meshctl's report type decodes every field
// of meshd's (a field added to xds.WhatIfReport must be added here).
func TestWhatIfReportMirrorsMeshd(t *testing.T) {
	full := xds.WhatIfReport{SnapshotSeq: 1, Rejected: true, Changed: true, ScopesSelected: 1, ScopesBuilt: 1,
		ScopesChanged: 1, Truncated: true, ProxiesPushed: 1, BytesPushed: 1, Notes: []string{"n"},
		Objects: []xds.WhatIfObject{{Kind: "k", Namespace: "n", Name: "x", Action: "update"}},
		Errors:  []model.ObjectError{{Kind: "k", Namespace: "n", Name: "x", Source: "s", Field: "f", Message: "m"}},
		Cleared: []model.ObjectError{{Message: "m"}},
		Scopes: []xds.WhatIfScope{{Scope: "s", Proxies: []string{"p"}, Changed: true, Rejected: true,
			ValidationErrors: []string{"v"}, Bytes: 1, Types: []xds.WhatIfType{{Type: "routes", Added: []string{"a"},
				Removed: []string{"r"}, Changed: []string{"c"}, BytesPerProxy: 1, Diff: "d"}}}},
	}
	b, err := json.Marshal(full)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var got whatIfReport
	require.NoError(t, dec.Decode(&got))
	assert.Equal(t, "update", got.Objects[0].Action)
	assert.Equal(t, "k n/x (s) field f: m", got.Errors[0].String())
	assert.Equal(t, "d", got.Scopes[0].Types[0].Diff)
	assert.Equal(t, []string{"v"}, got.Scopes[0].ValidationErrors)
	assert.Equal(t, whatIfRejected, got.exitCode())
}
