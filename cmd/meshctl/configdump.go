package main

import (
	"fmt"
	"net/url"
	"os"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// source is where proxy-config reads a proxy's config: meshd's
// /debug/config_dump (what meshd sent the proxy), an Envoy's admin
// (--envoy-admin: what the proxy holds, static resources included), or a
// file holding either's dump (-f).
type source struct {
	meshd *client
	envoy *client
	file  string
	proxy string
}

// fromMeshd reports whether the config comes from meshd.
func (s source) fromMeshd() bool { return s.envoy == nil && s.file == "" }

// configDump fetches the proxy's config dump (without endpoints when it
// comes from Envoy: see envoyClusters).
func (s source) configDump() ([]byte, error) {
	switch {
	case s.file != "":
		return os.ReadFile(s.file)
	case s.envoy != nil:
		return s.envoy.get("/config_dump")
	}
	b, err := s.meshd.get("/debug/config_dump?proxyID=" + url.QueryEscape(s.proxy))
	if isNotFound(err) {
		if ids, lerr := connectedProxies(s.meshd); lerr == nil {
			return nil, proxyNotFound(s.proxy, s.meshd.addr, ids)
		}
	}
	return b, err
}

// dump is the resources of a config dump, by kind, in the dump's order.
type dump struct {
	clusters  []*clusterv3.Cluster
	listeners []*listenerv3.Listener
	routes    []*routev3.RouteConfiguration
	endpoints []*endpointv3.ClusterLoadAssignment
	secrets   []secretEntry
}

// secretEntry is one SDS secret of a dump and its state (ACTIVE, WARMING).
type secretEntry struct {
	name, state, version string
	secret               *tlsv3.Secret
}

// parseDump reads an Envoy admin ConfigDump (JSON), as meshd's
// /debug/config_dump and Envoy's /config_dump serve it.
func parseDump(b []byte) (*dump, error) {
	var cd adminv3.ConfigDump
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true, Resolver: resolver}).Unmarshal(b, &cd); err != nil {
		return nil, fmt.Errorf("reading the config dump: %w", err)
	}
	d := &dump{}
	for _, a := range cd.GetConfigs() {
		if err := d.add(a); err != nil {
			return nil, fmt.Errorf("reading the config dump's %s: %w", a.GetTypeUrl(), err)
		}
	}
	return d, nil
}

// add adds the resources of one section of a config dump.
func (d *dump) add(a *anypb.Any) error {
	m, err := a.UnmarshalNew()
	if err != nil {
		return err
	}
	switch s := m.(type) {
	case *adminv3.ClustersConfigDump:
		for _, c := range s.GetStaticClusters() {
			err = addAs(&d.clusters, c.GetCluster(), err)
		}
		for _, c := range s.GetDynamicActiveClusters() {
			err = addAs(&d.clusters, c.GetCluster(), err)
		}
	case *adminv3.ListenersConfigDump:
		for _, l := range s.GetStaticListeners() {
			err = addAs(&d.listeners, l.GetListener(), err)
		}
		for _, l := range s.GetDynamicListeners() {
			err = addAs(&d.listeners, l.GetActiveState().GetListener(), err)
		}
	case *adminv3.RoutesConfigDump:
		for _, r := range s.GetStaticRouteConfigs() {
			err = addAs(&d.routes, r.GetRouteConfig(), err)
		}
		for _, r := range s.GetDynamicRouteConfigs() {
			err = addAs(&d.routes, r.GetRouteConfig(), err)
		}
	case *adminv3.EndpointsConfigDump:
		for _, e := range s.GetStaticEndpointConfigs() {
			err = addAs(&d.endpoints, e.GetEndpointConfig(), err)
		}
		for _, e := range s.GetDynamicEndpointConfigs() {
			err = addAs(&d.endpoints, e.GetEndpointConfig(), err)
		}
	case *adminv3.SecretsConfigDump:
		err = d.addSecrets(s)
	}
	return err
}

// addAs appends the resource packed in a to list, unless a is nil or an
// earlier error is passed (which it returns).
func addAs[M any, PM interface {
	*M
	proto.Message
}](list *[]PM, a *anypb.Any, err error) error {
	if err != nil || a == nil {
		return err
	}
	m := PM(new(M))
	if err := a.UnmarshalTo(m); err != nil {
		return err
	}
	*list = append(*list, m)
	return nil
}

// addSecrets adds the dynamic secrets of a dump: warming, then active
// (istioctl's order; static secrets are not shown, as by istioctl).
func (d *dump) addSecrets(s *adminv3.SecretsConfigDump) error {
	for _, group := range []struct {
		state   string
		secrets []*adminv3.SecretsConfigDump_DynamicSecret
	}{{"WARMING", s.GetDynamicWarmingSecrets()}, {"ACTIVE", s.GetDynamicActiveSecrets()}} {
		for _, ds := range group.secrets {
			var sec tlsv3.Secret
			if ds.GetSecret() != nil {
				if err := ds.GetSecret().UnmarshalTo(&sec); err != nil {
					return err
				}
			}
			d.secrets = append(d.secrets, secretEntry{name: ds.GetName(), state: group.state, version: ds.GetVersionInfo(), secret: &sec})
		}
	}
	return nil
}

// envoyClusters fetches an Envoy's /clusters?format=json (where istioctl
// reads endpoints: health and outlier status as Envoy sees them).
func (s source) envoyClusters() (*adminv3.Clusters, error) {
	var b []byte
	var err error
	if s.file != "" {
		b, err = os.ReadFile(s.file)
	} else {
		b, err = s.envoy.get("/clusters?format=json")
	}
	if err != nil {
		return nil, err
	}
	var cs adminv3.Clusters
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true, Resolver: resolver}).Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("reading Envoy's clusters: %w", err)
	}
	return &cs, nil
}
