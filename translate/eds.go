package translate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/internal/model"
)

// ClusterLoadAssignments returns every ClusterLoadAssignment of the mesh by
// EDS service name. They are shared by every scope; callers must not modify
// the map or its values.
func (x *Index) ClusterLoadAssignments() map[string]*endpoint.ClusterLoadAssignment {
	return x.clas
}

// EndpointShape is a fingerprint of everything endpoints contribute to
// listeners, routes and clusters (as opposed to ClusterLoadAssignments):
// the service accounts ISTIO_MUTUAL clusters verify, the port numbers
// inbound listeners take from EndpointSlices, and the endpoints embedded in
// DNS clusters. Two Indexes with equal shapes and equal config build equal
// non-EDS output for every scope, so an endpoint-only push whose shape did
// not change only needs to update ClusterLoadAssignments.
func (x *Index) EndpointShape() string {
	h := sha256.New()
	for _, svc := range x.services {
		if se := x.svcEndpoints[svc.Hostname+"/"+svc.Namespace]; se != nil {
			h.Write(se.shape)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// shapePart is svc's part of EndpointShape: its endpoints' service accounts
// and port maps and, for a service not resolved by EDS, its assignments
// (computed before).
func (x *Index) shapePart(svc *model.Service, eps []model.Endpoint) []byte {
	var b bytes.Buffer
	accounts, ports := map[string]bool{}, map[string]bool{}
	for i := range eps {
		accounts[eps[i].ServiceAccount] = true
		ports[portMapKey(eps[i].Ports)] = true
	}
	fmt.Fprintf(&b, "%s\x00%s\x00%s\x00", svc.Hostname,
		strings.Join(slices.Sorted(maps.Keys(accounts)), ","), strings.Join(slices.Sorted(maps.Keys(ports)), ";"))
	if svc.Resolution != model.ResolutionEDS {
		for _, p := range svc.Ports {
			if cla := x.clas[ClusterName(p.Port, "", svc.Hostname)]; cla != nil {
				m, _ := proto.MarshalOptions{Deterministic: true}.Marshal(cla)
				b.Write(m)
			}
		}
	}
	return b.Bytes()
}

func portMapKey(ports map[string]uint32) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(ports)) {
		fmt.Fprintf(&b, "%s=%d,", name, ports[name])
	}
	return b.String()
}
