package harness

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TypeStatus is one xDS type's row in /debug/syncz.
type TypeStatus struct {
	SentVersion  string `json:"sentVersion"`
	SentNonce    string `json:"sentNonce"`
	AckedVersion string `json:"ackedVersion"`
	AckedNonce   string `json:"ackedNonce"`
}

// SyncEntry is one proxy in /debug/syncz.
type SyncEntry struct {
	Proxy string                `json:"proxy"`
	Types map[string]TypeStatus `json:"types"`
}

// Acked returns the version of typ ("lds", "rds", "cds", "eds") the proxy
// last acknowledged; "" if none or if its last response is not ACKed yet.
func (m *Meshd) Acked(t testing.TB, proxy, typ string) string {
	t.Helper()
	var entries []SyncEntry
	m.GetJSON(t, "/debug/syncz", &entries)
	for _, e := range entries {
		if e.Proxy == proxy {
			ts := e.Types[typ]
			if ts.SentNonce != "" && ts.SentNonce == ts.AckedNonce {
				return ts.AckedVersion
			}
		}
	}
	return ""
}

// WaitNewAck waits up to within until proxy has acknowledged a version of
// typ other than old, and returns it and how long the wait took.
func (m *Meshd) WaitNewAck(t testing.TB, proxy, typ, old string, within time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	var v string
	require.Eventually(t, func() bool {
		v = m.Acked(t, proxy, typ)
		return v != "" && v != old
	}, within, 5*time.Millisecond, "%s never ACKed a new %s version", proxy, typ)
	return v, time.Since(start)
}
