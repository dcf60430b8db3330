package translate

import endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

// ClusterLoadAssignments returns every ClusterLoadAssignment of the mesh by
// EDS service name. They are shared by every scope; callers must not modify
// the map or its values.
func (x *Index) ClusterLoadAssignments() map[string]*endpoint.ClusterLoadAssignment {
	return x.clas
}
