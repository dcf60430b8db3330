package xdsclient

import (
	"testing"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVersions: a delta client with Options.Versions keeps the version of
// each resource it holds, as accepted; without it, every version is "".
func TestVersions(t *testing.T) {
	cds, eds := stormResponses(t, 3, false)
	for _, keep := range []bool{true, false} {
		tr := &delta{stream: &scripted[discovery.DeltaDiscoveryRequest, discovery.DeltaDiscoveryResponse]{
			resps: [][]byte{cds, eds}, codec: testCodec()}}
		c := newClient("x", Options{Delta: true, Versions: keep}, tr, func() {})
		for range 2 {
			u, err := c.tr.recv()
			require.NoError(t, err)
			require.NoError(t, c.handle(u))
			responseBufs.Put(u.buf)
		}
		for typ, url := range map[string]string{"cds": resourcev3.ClusterType, "eds": resourcev3.EndpointType} {
			want := map[string]string{}
			for i := range 3 {
				want[stormName(i)] = ""
				if keep {
					want[stormName(i)] = stormVersion(stormName(i) + url)
				}
			}
			assert.Equal(t, want, c.Versions(typ), "%s, keep %v", typ, keep)
		}
	}
}
