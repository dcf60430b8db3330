package bootstrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	overload "github.com/envoyproxy/go-control-plane/envoy/config/overload/v3"
	internallistener "github.com/envoyproxy/go-control-plane/envoy/extensions/bootstrap/internal_listener/v3"
	downstreamconns "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"
)

// XDSClusterName is the static cluster ADS runs over, Istio's name.
const XDSClusterName = "xds-grpc"

// re2MaxProgramSize is Istio's runtime override of Envoy's RE2 program size
// limit (default 100): VirtualService regexes bigger than Envoy's default
// would otherwise be NACKed (pkg/bootstrap/config.go, extractRuntimeFlags).
const re2MaxProgramSize = 32768

// Generate builds o's bootstrap and marshals it in o.Format.
func Generate(o *Options) ([]byte, error) {
	b, err := Build(o)
	if err != nil {
		return nil, err
	}
	return Marshal(b, o.Format)
}

// Build returns the Envoy bootstrap for o, which must come from Parse (or
// hold equally valid values). The result has passed Validate, and so has
// every typed config packed into it.
func Build(o *Options) (*bootstrapv3.Bootstrap, error) {
	if len(o.IPs) == 0 {
		return nil, errors.New("building bootstrap: no proxy IP")
	}
	node, err := o.node()
	if err != nil {
		return nil, err
	}
	static, err := o.staticResources()
	if err != nil {
		return nil, err
	}
	extensions, err := bootstrapExtensions()
	if err != nil {
		return nil, err
	}
	om, err := overloadManager()
	if err != nil {
		return nil, err
	}
	b := &bootstrapv3.Bootstrap{
		Node:                node,
		Admin:               &bootstrapv3.Admin{Address: socketAddress(o.AdminAddress, o.AdminPort)},
		DynamicResources:    o.dynamicResources(),
		StaticResources:     static,
		LayeredRuntime:      layeredRuntime(),
		BootstrapExtensions: extensions,
		OverloadManager:     om,
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("generated bootstrap is invalid: %w", err)
	}
	return b, nil
}

// dynamicResources is ADS to xds-grpc, carrying CDS and LDS (and through
// them EDS and RDS). initial_fetch_timeout 0s, as Istio: Envoy waits for
// meshd rather than start with no config. With --tls every stream carries
// the token (xdsInitialMetadata).
func (o *Options) dynamicResources() *bootstrapv3.Bootstrap_DynamicResources {
	api := core.ApiConfigSource_DELTA_GRPC
	if o.XDSAPI == XDSAPISotW {
		api = core.ApiConfigSource_GRPC
	}
	ads := func() *core.ConfigSource {
		return &core.ConfigSource{
			ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
			InitialFetchTimeout:   durationpb.New(0),
			ResourceApiVersion:    core.ApiVersion_V3,
		}
	}
	return &bootstrapv3.Bootstrap_DynamicResources{
		AdsConfig: &core.ApiConfigSource{
			ApiType:                   api,
			TransportApiVersion:       core.ApiVersion_V3,
			SetNodeOnFirstMessageOnly: true,
			GrpcServices: []*core.GrpcService{{
				TargetSpecifier: &core.GrpcService_EnvoyGrpc_{EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: XDSClusterName}},
				InitialMetadata: o.xdsInitialMetadata(),
			}},
		},
		CdsConfig: ads(),
		LdsConfig: ads(),
	}
}

// layeredRuntime is Istio's: a static layer of overrides and an admin layer
// (needed for /runtime_modify).
func layeredRuntime() *bootstrapv3.LayeredRuntime {
	static := &structpb.Struct{Fields: map[string]*structpb.Value{
		"re2.max_program_size.error_level": structpb.NewNumberValue(re2MaxProgramSize),
	}}
	return &bootstrapv3.LayeredRuntime{Layers: []*bootstrapv3.RuntimeLayer{
		{Name: "global config", LayerSpecifier: &bootstrapv3.RuntimeLayer_StaticLayer{StaticLayer: static}},
		{Name: "admin", LayerSpecifier: &bootstrapv3.RuntimeLayer_AdminLayer_{AdminLayer: &bootstrapv3.RuntimeLayer_AdminLayer{}}},
	}}
}

// bootstrapExtensions enables internal listeners, as Istio's bootstrap does.
func bootstrapExtensions() ([]*core.TypedExtensionConfig, error) {
	il, err := pack(&internallistener.InternalListener{BufferSizeKb: wrapperspb.UInt32(64)})
	if err != nil {
		return nil, err
	}
	return []*core.TypedExtensionConfig{{Name: "envoy.bootstrap.internal_listener", TypedConfig: il}}, nil
}

// overloadManager sets Istio's default global downstream connection limit
// (math.MaxInt32, effectively none), which also quiets Envoy's warning that
// no limit is configured.
func overloadManager() (*overload.OverloadManager, error) {
	cfg, err := pack(&downstreamconns.DownstreamConnectionsConfig{MaxActiveDownstreamConnections: math.MaxInt32})
	if err != nil {
		return nil, err
	}
	return &overload.OverloadManager{ResourceMonitors: []*overload.ResourceMonitor{{
		Name:       "envoy.resource_monitors.global_downstream_max_connections",
		ConfigType: &overload.ResourceMonitor_TypedConfig{TypedConfig: cfg},
	}}}, nil
}

// validator is a go-control-plane message.
type validator interface {
	proto.Message
	ValidateAll() error
}

// pack validates m and wraps it in an Any: Validate on the bootstrap does not
// look inside Any fields.
func pack(m validator) (*anypb.Any, error) {
	if err := m.ValidateAll(); err != nil {
		return nil, fmt.Errorf("generated %s is invalid: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return anypb.New(m)
}

// Marshal renders b in format (FormatYAML or FormatJSON) with Envoy's field
// names (snake_case). The output is deterministic: protojson's field order,
// re-indented; YAML keys sorted.
func Marshal(b *bootstrapv3.Bootstrap, format string) ([]byte, error) {
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("marshalling bootstrap: %w", err)
	}
	switch format {
	case FormatJSON:
		// protojson varies its white space on purpose; settle it.
		var out bytes.Buffer
		if err := json.Indent(&out, raw, "", "  "); err != nil {
			return nil, fmt.Errorf("indenting bootstrap JSON: %w", err)
		}
		out.WriteByte('\n')
		return out.Bytes(), nil
	case FormatYAML:
		out, err := yaml.JSONToYAML(raw)
		if err != nil {
			return nil, fmt.Errorf("converting bootstrap to YAML: %w", err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unknown format %q: want %s or %s", format, FormatYAML, FormatJSON)
	}
}

// durationOf is a protobuf duration.
func durationOf(d time.Duration) *durationpb.Duration { return durationpb.New(d) }
