package fleet

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshd/meshd/internal/xdsclient"
)

// Proxy is one simulated proxy. Its exported fields are read-only.
type Proxy struct {
	Index     int
	NodeID    string
	Namespace string
	metadata  map[string]any

	client     atomic.Pointer[xdsclient.Client]
	started    atomic.Int64 // unix ns of the first connection attempt
	configured atomic.Int64 // unix ns when it first had its full config
	attempts   atomic.Int32

	mu      sync.Mutex
	arrived []Arrival
	lastErr error
	failure int
}

// Arrival is one response a proxy handled: when, of which type and
// version, how big, and whether it was NACKed.
type Arrival struct {
	Type      string    `json:"type"`
	Version   string    `json:"version"`
	At        time.Time `json:"at"`
	Bytes     int       `json:"bytes"`
	Resources int       `json:"resources"`
	Nack      bool      `json:"nack,omitempty"`
}

func (p *Proxy) start(at time.Time) { p.started.CompareAndSwap(0, at.UnixNano()) }

func (p *Proxy) record(r xdsclient.Response) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.arrived = append(p.arrived, Arrival{Type: r.Type, Version: r.Version, At: r.At, Bytes: r.Bytes,
		Resources: len(r.Names), Nack: r.Nack})
}

func (p *Proxy) failed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failure++
	p.lastErr = err
}

// Client is the proxy's current client (nil before its first stream).
func (p *Proxy) Client() *xdsclient.Client { return p.client.Load() }

// ConfiguredAfter is how long the proxy took from its first connection
// attempt to its full config; false if it has not had it yet.
func (p *Proxy) ConfiguredAfter() (time.Duration, bool) {
	c := p.configured.Load()
	if c == 0 {
		return 0, false
	}
	return time.Duration(c - p.started.Load()), true
}

// Attempts counts the streams the proxy opened (1 + reconnections).
func (p *Proxy) Attempts() int { return int(p.attempts.Load()) }

// Failures counts streams that ended, and LastError is why the last did.
func (p *Proxy) Failures() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failure, p.lastErr
}

// Arrivals returns the responses the proxy handled, oldest first, from
// index from on (so callers can take what came after a mark).
func (p *Proxy) Arrivals(from int) []Arrival {
	p.mu.Lock()
	defer p.mu.Unlock()
	if from >= len(p.arrived) {
		return nil
	}
	return append([]Arrival(nil), p.arrived[from:]...)
}

// Mark returns the number of responses so far, for Arrivals.
func (p *Proxy) Mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.arrived)
}

// LastAt is when the proxy last received anything.
func (p *Proxy) LastAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.arrived) == 0 {
		return time.Time{}
	}
	return p.arrived[len(p.arrived)-1].At
}

// Totals sums bytes and responses per type over arrivals.
func Totals(arrivals []Arrival) (bytes, responses map[string]int) {
	bytes, responses = map[string]int{}, map[string]int{}
	for _, a := range arrivals {
		bytes[a.Type] += a.Bytes
		responses[a.Type]++
	}
	return bytes, responses
}
