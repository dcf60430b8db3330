package xds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshd/meshd/internal/ca"
)

// Debug endpoints over xDS, as istiod's debug generator: a client
// (istioctl x internal-debug) asks on an ADS stream for type DebugType with
// one resource name, a debug endpoint with its query ("syncz",
// "config_dump?proxyID=pod.ns"); the answer is one resource, an Any of
// DebugType whose value is what GET /debug/<name> of the admin handler
// writes. Who may read what is decided by the stream's authenticated
// identity, never by its node (see authorizeDebug): streams without one
// (the plaintext port, or XDS_AUTH off) are refused. A debug request is
// answered before the tracker sees the stream, so its node (istioctl's
// "debug~0.0.0.0~istioctl~cluster.local", or adsc's made-up sidecar) is
// never parsed, bound to a scope or sent mesh config (debugstream.go).

// DebugType is the type URL of istiod's debug endpoints over xDS.
const DebugType = "istio.io/debug"

// debugTypePrefix starts the type URLs of istiod's status generator
// (istio.io/debug/syncz and istio.io/debug/config_dump: CSDS ClientConfigs,
// for istioctl proxy-status), which meshd does not serve.
const debugTypePrefix = DebugType + "/"

// isDebugType reports whether typeURL is DebugType or one of istiod's
// status generator's.
func isDebugType(typeURL string) bool {
	return typeURL == DebugType || strings.HasPrefix(typeURL, debugTypePrefix)
}

// namespaceDebuggers are the endpoints an identity of an unprivileged
// namespace may read, for proxies of its own namespace only: istiod's
// activeNamespaceDebuggers (config_dump, ndsz, edsz) that meshd has.
var namespaceDebuggers = map[string]bool{"config_dump": true}

// DebugAccess configures the debug endpoints served over xDS.
type DebugAccess struct {
	// Handler serves GET /debug/<name> (the admin handler).
	Handler http.Handler
	// SystemNamespace is the istio namespace (--istio-namespace): its
	// identities, and those of the mesh root namespace, read every endpoint.
	SystemNamespace string
	// AllowedNamespaces (DEBUG_ENDPOINT_AUTH_ALLOWED_NAMESPACES) are more
	// namespaces whose identities read every endpoint.
	AllowedNamespaces []string
}

// ServeDebug answers istio.io/debug requests of authenticated streams from
// d.Handler. Until it is called they are refused with Unimplemented.
func (s *Server) ServeDebug(d DebugAccess) { s.debug.Store(&d) }

// Reasons of meshd_xds_debug_refused_total.
const (
	debugUnauthenticated = "unauthenticated" // no identity: plaintext port, XDS_AUTH off
	debugInvalid         = "invalid"         // not exactly one well-formed endpoint
	debugEndpoint        = "endpoint"        // an endpoint the caller's namespace may not read
	debugProxy           = "proxy"           // config_dump of a proxy not of the caller's namespace
	debugUnsupported     = "unsupported"     // istiod's status types; debug not served (ServeDebug not called)
)

// newDebugRefused returns meshd_xds_debug_refused_total{reason}, registered
// on reg (or the one already there: Servers may share their Metrics).
func newDebugRefused(reg *prometheus.Registry) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshd_xds_debug_refused_total",
		Help: "istio.io/debug requests over ADS refused: no authenticated identity (unauthenticated), not exactly one " +
			"well-formed endpoint (invalid), an endpoint the caller's namespace may not read (endpoint), the config of " +
			"a proxy not of the caller's namespace (proxy), istiod's status types (istio.io/debug/syncz: unsupported).",
	}, []string{"reason"})
	if reg != nil {
		var dup prometheus.AlreadyRegisteredError
		if err := reg.Register(c); errors.As(err, &dup) {
			c = dup.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	for _, r := range []string{debugUnauthenticated, debugInvalid, debugEndpoint, debugProxy, debugUnsupported} {
		c.WithLabelValues(r) // exported as 0 until the first refusal
	}
	return c
}

// debugRequest is one debug request as a stream received it.
type debugRequest struct {
	ctx     context.Context // the stream's: its identity, its end
	typeURL string
	names   []string
	node    string // for logs only
}

// answerDebug answers a debug request with the endpoint's output, as an Any
// of DebugType, or refuses it with the status the stream is to end with
// (istiod's codes and messages).
func (s *Server) answerDebug(r debugRequest) (*anypb.Any, error) {
	id, ok := ca.IdentityFrom(r.ctx)
	if !ok {
		return nil, s.refuseDebug(r, "none", debugUnauthenticated, status.Error(codes.Unauthenticated, "authentication required"))
	}
	caller := id.SPIFFEID()
	if r.typeURL != DebugType {
		return nil, s.refuseDebug(r, caller, debugUnsupported, status.Errorf(codes.Unimplemented,
			"meshd does not serve %s; ask for %s with the endpoint as resource name", r.typeURL, DebugType))
	}
	if len(r.names) != 1 {
		return nil, s.refuseDebug(r, caller, debugInvalid, status.Error(codes.InvalidArgument, "exactly one debug request is required"))
	}
	target, err := debugURL(r.names[0])
	if err != nil {
		return nil, s.refuseDebug(r, caller, debugInvalid, status.Error(codes.InvalidArgument, err.Error()))
	}
	d := s.debug.Load()
	if d == nil || d.Handler == nil {
		return nil, s.refuseDebug(r, caller, debugUnsupported, status.Error(codes.Unimplemented, "meshd: debug endpoints are not served over xDS"))
	}
	if reason, err := s.authorizeDebug(d, id, target); err != nil {
		return nil, s.refuseDebug(r, caller, reason, status.Error(codes.PermissionDenied, err.Error()))
	}
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return nil, s.refuseDebug(r, caller, debugInvalid, status.Errorf(codes.InvalidArgument, "debug request %q: %v", r.names[0], err))
	}
	rec := httptest.NewRecorder()
	d.Handler.ServeHTTP(rec, req)
	s.log.Info("debug request served over xDS", "identity", caller, "node", r.node, "path", target.String(), "status", rec.Code)
	// The body alone, whatever the status, as istiod: istioctl reads
	// errors ("404 page not found") from it.
	return &anypb.Any{TypeUrl: DebugType, Value: rec.Body.Bytes()}, nil
}

// refuseDebug counts and logs a refused debug request and returns err.
func (s *Server) refuseDebug(r debugRequest, identity, reason string, err error) error {
	s.debugRefused.WithLabelValues(reason).Inc()
	s.log.Warn("refusing debug request", "identity", identity, "node", r.node, "path", strings.Join(r.names, ","),
		"reason", reason, "error", status.Convert(err).Message())
	return err
}

// debugURL returns the admin URL of a debug resource name: the endpoint's
// path under /debug/ (cleaned: "config_dump/../syncz" is syncz), its query
// kept.
func debugURL(name string) (*url.URL, error) {
	u, err := url.Parse(name)
	if err != nil {
		return nil, fmt.Errorf("debug request %q: %w", name, err)
	}
	p := path.Clean("/debug/" + u.Path)
	if u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(p, "/debug/") {
		return nil, fmt.Errorf("debug request %q: want an endpoint under /debug/, such as syncz or config_dump?proxyID=pod.ns", name)
	}
	return &url.URL{Path: p, RawQuery: u.RawQuery}, nil
}

// authorizeDebug decides by the caller's identity, as istiod's debug
// authorization: the istio namespace, the mesh root namespace and
// AllowedNamespaces read every endpoint; another namespace reads only
// namespaceDebuggers, and only of proxies of its namespace. It returns the
// refusal's reason with the error.
func (s *Server) authorizeDebug(d *DebugAccess, id ca.Identity, target *url.URL) (reason string, err error) {
	ns := id.Namespace
	if ns != "" && (ns == d.SystemNamespace || ns == s.meshRootNamespace() || slices.Contains(d.AllowedNamespaces, ns)) {
		return "", nil
	}
	if !namespaceDebuggers[strings.TrimPrefix(target.Path, "/debug/")] {
		return debugEndpoint, fmt.Errorf("the debug info is not available for current identity: %q", id.SPIFFEID())
	}
	// The handler finds its proxy by the same query parameter; without one
	// it answers that it wants one.
	if proxyID := target.Query().Get("proxyID"); proxyID != "" && !s.onlyProxiesOf(proxyID, ns) {
		return debugProxy, fmt.Errorf("%s may read the config of connected proxies of namespace %s only; %q is not one",
			id.SPIFFEID(), ns, proxyID)
	}
	return "", nil
}

// onlyProxiesOf reports whether proxyID names at least one connected proxy
// (by node ID or pod.namespace, as ConfigDump finds it) and every proxy it
// names is of namespace ns: a proxy of the plaintext port may take any ID.
// A proxy not connected is refused as one of another namespace would be, so
// the answer tells nothing of other namespaces.
func (s *Server) onlyProxiesOf(proxyID, ns string) bool {
	found := false
	for _, p := range s.Proxies() {
		if p.NodeID != proxyID && p.ID != proxyID {
			continue
		}
		if p.Namespace != ns {
			return false
		}
		found = true
	}
	return found
}

// meshRootNamespace returns the mesh config's root namespace ("" before the
// first push).
func (s *Server) meshRootNamespace() string {
	s.mu.Lock()
	x := s.index
	s.mu.Unlock()
	if x == nil {
		return ""
	}
	return x.Snapshot().MeshConfig().GetRootNamespace()
}
