package xdsclient

import (
	"errors"
	"fmt"
	"slices"
	"unsafe"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"
)

// decode checks every resource of u, fills in its name (interned, so that
// thousands of clients share one copy, and so that it does not keep the
// response's buffer, which a delta resource's name aliases) and, for
// clusters and listeners, the EDS and RDS names it references. Listeners
// are decoded in full (the route names are inside nested Anys); clusters,
// ClusterLoadAssignments and route configurations are read at the wire
// level (the fields needed, and a well-formed top level), which keeps
// thousands of simulated proxies cheap. An error means the response must
// be NACKed.
func decode(short string, u *update) error {
	for i := range u.res {
		// First, so that no name aliases the response's (pooled) buffer
		// even when a later resource fails to decode.
		if r := &u.res[i]; r.name != "" {
			r.handle = internHandle(r.name)
			r.name = r.handle.Value()
		}
	}
	var refs []string // the clusters' EDS names: one array for the response
	for i := range u.res {
		r := &u.res[i]
		typeURL, value, ok := r.payload()
		if !ok {
			if !u.delta {
				return fmt.Errorf("%s: empty resource", kindName[short])
			}
			continue // a delta resource without body: name and version only
		}
		if typeURL != typeURLs[short] {
			return fmt.Errorf("%s: resource of type %q in a %s response", kindName[short], typeURL, short)
		}
		name, ref, lrefs, err := decodeOne(short, typeURL, value)
		if err != nil {
			return err
		}
		if r.name == "" {
			r.handle = internHandle(name)
			r.name = r.handle.Value()
		}
		switch {
		case ref == "":
			r.refs = lrefs
		default:
			if ref == r.name { // an EDS cluster's own name, interned above
				ref = r.name
			} else {
				ref = intern(ref)
			}
			if refs == nil {
				refs = make([]string, 0, len(u.res)-i)
			}
			refs = append(refs, ref)
			r.refs = refs[len(refs)-1 : len(refs) : len(refs)]
		}
	}
	return nil
}

var kindName = map[string]string{"cds": "cluster", "eds": "cluster load assignment", "lds": "listener", "rds": "route configuration"}

// decodeOne reads a resource of type short (an Any's type URL and value):
// its name, and the names it references, a cluster's EDS name as ref and
// a listener's RDS names (interned) as refs. A name read at the wire level
// (name, ref) aliases value: the caller interns what it keeps.
func decodeOne(short, typeURL string, value []byte) (name, ref string, refs []string, err error) {
	switch short {
	case "cds":
		name, eds, err := wireCluster(value)
		if err != nil {
			return "", "", nil, fmt.Errorf("cluster: %w", err)
		}
		return name, eds, nil, nil
	case "lds":
		l := &listener.Listener{}
		if err := (&anypb.Any{TypeUrl: typeURL, Value: value}).UnmarshalTo(l); err != nil {
			return "", "", nil, fmt.Errorf("listener: %w", err)
		}
		refs, err := routeNames(l)
		if err != nil {
			return "", "", nil, fmt.Errorf("listener %s: %w", l.GetName(), err)
		}
		return l.GetName(), "", refs, nil
	default:
		name, err := wireName(value)
		if err != nil {
			return "", "", nil, fmt.Errorf("%s: %w", kindName[short], err)
		}
		return name, "", nil, nil
	}
}

// routeNames returns the RDS names of every HttpConnectionManager of l (in
// its filter chains or as its API listener), sorted and interned.
func routeNames(l *listener.Listener) ([]string, error) {
	var hcms []*anypb.Any
	if api := l.GetApiListener().GetApiListener(); api != nil {
		hcms = append(hcms, api)
	}
	chains := slices.Clone(l.GetFilterChains())
	if d := l.GetDefaultFilterChain(); d != nil {
		chains = append(chains, d)
	}
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			if tc := f.GetTypedConfig(); tc != nil && tc.MessageIs(&hcm.HttpConnectionManager{}) {
				hcms = append(hcms, tc)
			}
		}
	}
	var names []string
	for _, a := range hcms {
		m := &hcm.HttpConnectionManager{}
		if err := a.UnmarshalTo(m); err != nil {
			return nil, err
		}
		if n := m.GetRds().GetRouteConfigName(); n != "" && !slices.Contains(names, n) {
			names = append(names, intern(n))
		}
	}
	slices.Sort(names)
	return names, nil
}

// wireName walks the top-level fields of an encoded message and returns
// field 1 as a string (aliasing b): the name of a ClusterLoadAssignment
// (cluster_name) and of a RouteConfiguration (name). Malformed wire data
// is an error.
func wireName(b []byte) (string, error) {
	var name string
	err := walk(b, func(num protowire.Number, v []byte, _ uint64) error {
		if num == 1 {
			name = aliasString(v)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", errors.New("no name")
	}
	return name, nil
}

// Cluster fields read by wireCluster.
const (
	clusterName      = 1 // string name
	clusterType      = 2 // enum type (oneof cluster_discovery_type)
	clusterEDSConfig = 3 // EdsClusterConfig eds_cluster_config
	edsServiceName   = 2 // EdsClusterConfig.service_name
	clusterTypeEDS   = uint64(cluster.Cluster_EDS)
)

// wireCluster reads a Cluster's name and, if it is an EDS cluster, the
// name of its ClusterLoadAssignment (service_name, else the cluster name);
// both alias b.
func wireCluster(b []byte) (name, eds string, err error) {
	var typ uint64
	var svc string
	err = walk(b, func(num protowire.Number, v []byte, x uint64) error {
		switch num {
		case clusterName:
			name = aliasString(v)
		case clusterType:
			typ = x
		case clusterEDSConfig:
			return walk(v, func(num protowire.Number, v []byte, _ uint64) error {
				if num == edsServiceName {
					svc = aliasString(v)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return "", "", err
	}
	if name == "" {
		return "", "", errors.New("no name")
	}
	if typ != clusterTypeEDS {
		return name, "", nil
	}
	if svc == "" {
		svc = name
	}
	return name, svc, nil
}

// walk calls fn with each top-level field of an encoded message: its
// number and its bytes (length-delimited fields) or value (varints).
func walk(b []byte, fn func(num protowire.Number, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var (
			v []byte
			x uint64
		)
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(num, v, x); err != nil {
			return err
		}
	}
	return nil
}

// intern returns the canonical copy of s (a copy if s is new: s may alias
// a buffer). unique keeps it canonical while a Handle to it lives, not the
// string: what many clients keep, they keep with its Handle (a resource's
// name and version), so that the next client finds it rather than
// interning a new copy after every garbage collection.
func intern(s string) string { return internHandle(s).Value() }

// aliasString is b as a string, without a copy: for strings interned or
// compared, never kept as they are.
func aliasString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
