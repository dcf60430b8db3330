package translate

import (
	"errors"
	"fmt"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// viewCheck is the result of validating a view on its own, with the names
// its resources define, for checking the references of the scopes' own
// resources.
type viewCheck struct {
	err              error
	routes, clusters nameSet
}

// validateSplit is ValidateIn for an Output merged from a view: the view is
// validated once per Index (its references resolve within it), then only
// the scope's own resources are, their references resolving in the view or
// among themselves. Together this is what Validate checks on the merged
// Output.
func validateSplit(x *Index, out *Output) error {
	vc := x.checkView(out.shared)
	own, m := out.own, &x.checked
	errs := append([]error{vc.err}, checkResources(own, m, false)...)
	routes, clusters := map[string]bool{}, map[string]bool{}
	for _, r := range own.Routes {
		routes[r.Name] = true
	}
	for _, c := range own.Clusters {
		clusters[c.Name] = true
	}
	hasRoute := func(n string) bool { return routes[n] || vc.routes.has(n) }
	hasCluster := func(n string) bool { return clusters[n] || vc.clusters.has(n) }
	hasSecret := secretsOf(out.shared, own, out)
	for _, l := range own.Listeners {
		for _, ref := range m.listenerRefs(l) {
			errs = append(errs, ref.missing(l.Name, hasRoute, hasCluster, hasSecret)...)
		}
	}
	if checkClusterSecrets {
		errs = append(errs, clusterSecretErrors(own.Clusters, hasSecret)...)
	}
	for _, r := range own.Routes {
		for _, c := range m.routeRefs(r) {
			if !hasCluster(c) {
				errs = append(errs, fmt.Errorf("route %q references missing cluster %q", r.Name, c))
			}
		}
	}
	errs = append(errs, x.checkAssignments(own.Clusters)...)
	return errors.Join(errs...)
}

// secretsOf returns whether a secret is in any of outs: a scope's own
// listeners may fetch the view's secrets or their own.
func secretsOf(outs ...*Output) func(string) bool {
	var sets []nameSet
	for _, o := range outs {
		if len(o.Secrets) > 0 {
			sets = append(sets, newNameSet(o.Secrets, (*tlsv3.Secret).GetName))
		}
	}
	return func(n string) bool {
		for _, s := range sets {
			if s.has(n) {
				return true
			}
		}
		return false
	}
}

// checkView validates a view once per Index.
func (x *Index) checkView(view *Output) *viewCheck {
	if v, ok := x.viewChecks.Load(view); ok {
		return v.(*viewCheck)
	}
	withEDS := *view
	withEDS.Endpoints = x.assignmentsFor(view.Clusters)
	vc := &viewCheck{err: validate(&withEDS, &x.checked),
		routes:   newNameSet(view.Routes, (*route.RouteConfiguration).GetName),
		clusters: newNameSet(view.Clusters, (*cluster.Cluster).GetName)}
	v, _ := x.viewChecks.LoadOrStore(view, vc)
	return v.(*viewCheck)
}

// assignmentsFor returns the mesh's ClusterLoadAssignments of the EDS
// clusters among cs.
func (x *Index) assignmentsFor(cs []*cluster.Cluster) []*endpoint.ClusterLoadAssignment {
	var out []*endpoint.ClusterLoadAssignment
	for _, c := range cs {
		if c.GetType() == cluster.Cluster_EDS {
			if cla, ok := x.clas[edsName(c)]; ok {
				out = append(out, cla)
			}
		}
	}
	return out
}

// checkAssignments reports EDS clusters among cs without an assignment.
func (x *Index) checkAssignments(cs []*cluster.Cluster) []error {
	var errs []error
	for _, c := range cs {
		if c.GetType() == cluster.Cluster_EDS {
			if _, ok := x.clas[edsName(c)]; !ok {
				errs = append(errs, fmt.Errorf("EDS cluster %q has no ClusterLoadAssignment", c.Name))
			}
		}
	}
	return errs
}
