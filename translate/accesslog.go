package translate

import (
	"fmt"
	"strings"

	accesslog "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	filelog "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	grpclog "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/structpb"
	meshconfig "istio.io/api/mesh/v1alpha1"

	"github.com/meshd/meshd/internal/model"
)

const (
	fileAccessLogName = "envoy.access_loggers.file"
	httpGrpcLogName   = "envoy.access_loggers.http_grpc"
	tcpGrpcLogName    = "envoy.access_loggers.tcp_grpc"
)

// accessLogger is one access log MeshConfig turns on for sidecars. A gRPC
// access-log service (ALS) logger names the cluster of its collector: it is
// attached only to scopes that have that cluster, so no listener ever
// references a cluster its proxy lacks (the outage that turning ALS on once
// caused at the bank).
type accessLogger struct {
	log     *accesslog.AccessLog
	cluster string // ALS collector cluster; "" for file loggers
}

// accessLogs are the loggers for HTTP connection managers and TCP proxies.
type accessLogs struct{ http, tcp []accessLogger }

// indexAccessLogs reads MeshConfig's accessLogFile (with accessLogEncoding
// and accessLogFormat) and the providers named in
// defaultProviders.accessLogging (envoyFileAccessLog, envoyHttpAls,
// envoyTcpAls); a provider meshd cannot use is reported and left out.
func (x *Index) indexAccessLogs() {
	mc := x.snap.MeshConfig()
	if path := mc.GetAccessLogFile(); path != "" {
		l := accessLogger{log: fileAccessLog(path, mc.GetAccessLogEncoding() == meshconfig.MeshConfig_JSON, mc.GetAccessLogFormat(), nil)}
		x.logs.http = append(x.logs.http, l)
		x.logs.tcp = append(x.logs.tcp, l)
	}
	providers := map[string]*meshconfig.MeshConfig_ExtensionProvider{}
	for _, p := range mc.GetExtensionProviders() {
		providers[p.GetName()] = p
	}
	for i, name := range mc.GetDefaultProviders().GetAccessLogging() {
		field := fmt.Sprintf("defaultProviders.accessLogging[%d]", i)
		p, ok := providers[name]
		if !ok {
			x.reportMesh(field, "no extensionProvider is named %q; no access log is configured for it", name)
			continue
		}
		switch pr := p.GetProvider().(type) {
		case *meshconfig.MeshConfig_ExtensionProvider_EnvoyFileAccessLog:
			f := pr.EnvoyFileAccessLog
			path := f.GetPath()
			if path == "" {
				path = "/dev/stdout"
			}
			l := accessLogger{log: fileAccessLog(path, f.GetLogFormat().GetLabels() != nil,
				f.GetLogFormat().GetText(), f.GetLogFormat().GetLabels())}
			x.logs.http = append(x.logs.http, l)
			x.logs.tcp = append(x.logs.tcp, l)
		case *meshconfig.MeshConfig_ExtensionProvider_EnvoyHttpAls:
			a := pr.EnvoyHttpAls
			if c, ok := x.alsCluster(name, a.GetService(), a.GetPort()); ok {
				x.logs.http = append(x.logs.http, accessLogger{cluster: c, log: &accesslog.AccessLog{Name: httpGrpcLogName,
					ConfigType: &accesslog.AccessLog_TypedConfig{TypedConfig: mustAny(&grpclog.HttpGrpcAccessLogConfig{
						CommonConfig:                    alsCommon(name, a.GetLogName(), c, a.GetFilterStateObjectsToLog()),
						AdditionalRequestHeadersToLog:   a.GetAdditionalRequestHeadersToLog(),
						AdditionalResponseHeadersToLog:  a.GetAdditionalResponseHeadersToLog(),
						AdditionalResponseTrailersToLog: a.GetAdditionalResponseTrailersToLog(),
					})}}})
			}
		case *meshconfig.MeshConfig_ExtensionProvider_EnvoyTcpAls:
			a := pr.EnvoyTcpAls
			if c, ok := x.alsCluster(name, a.GetService(), a.GetPort()); ok {
				x.logs.tcp = append(x.logs.tcp, accessLogger{cluster: c, log: &accesslog.AccessLog{Name: tcpGrpcLogName,
					ConfigType: &accesslog.AccessLog_TypedConfig{TypedConfig: mustAny(&grpclog.TcpGrpcAccessLogConfig{
						CommonConfig: alsCommon(name, a.GetLogName(), c, a.GetFilterStateObjectsToLog()),
					})}}})
			}
		default:
			x.reportMesh(field, "extensionProvider %q is not an access log provider meshd supports (envoyFileAccessLog, envoyHttpAls, envoyTcpAls)", name)
		}
	}
}

// alsCluster returns the outbound cluster of an ALS collector given as
// "host" (FQDN) or "namespace/host", reporting a collector that is not in
// the registry.
func (x *Index) alsCluster(provider, service string, port uint32) (string, bool) {
	host := service
	if ns, h, ok := strings.Cut(service, "/"); ok {
		host = resolveHost(h, ns, x.domain)
	}
	svc, ok := x.byHost[host]
	if !ok {
		x.reportMesh("extensionProviders", "access log provider %q: service %q is not in the registry; no access log is sent to it", provider, service)
		return "", false
	}
	if _, ok := svc.PortByNumber(port); !ok {
		x.reportMesh("extensionProviders", "access log provider %q: service %q has no port %d; no access log is sent to it", provider, host, port)
		return "", false
	}
	return ClusterName(port, "", host), true
}

// reportMesh reports a problem with the mesh config.
func (x *Index) reportMesh(field, format string, args ...any) {
	x.report(model.KindMeshConfig, "", "mesh", "", field, format, args...)
}

// alsCommon is the common part of an ALS logger sending to cluster.
func alsCommon(provider, logName, cluster string, filterState []string) *grpclog.CommonGrpcAccessLogConfig {
	if logName == "" {
		logName = provider
	}
	return &grpclog.CommonGrpcAccessLogConfig{
		LogName:                 logName,
		TransportApiVersion:     core.ApiVersion_V3,
		FilterStateObjectsToLog: filterState,
		GrpcService: &core.GrpcService{TargetSpecifier: &core.GrpcService_EnvoyGrpc_{
			EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: cluster}}},
	}
}

// fileAccessLog writes to path: JSON (labels, or istiod's default fields)
// or text (format, or Envoy's default).
func fileAccessLog(path string, asJSON bool, format string, labels *structpb.Struct) *accesslog.AccessLog {
	cfg := &filelog.FileAccessLog{Path: path}
	switch {
	case asJSON:
		if labels == nil {
			labels = defaultJSONLabels()
		}
		cfg.AccessLogFormat = &filelog.FileAccessLog_LogFormat{LogFormat: &core.SubstitutionFormatString{
			Format: &core.SubstitutionFormatString_JsonFormat{JsonFormat: labels}}}
	case format != "":
		cfg.AccessLogFormat = &filelog.FileAccessLog_LogFormat{LogFormat: &core.SubstitutionFormatString{
			Format: &core.SubstitutionFormatString_TextFormatSource{TextFormatSource: &core.DataSource{
				Specifier: &core.DataSource_InlineString{InlineString: format}}}}}
	}
	return &accesslog.AccessLog{Name: fileAccessLogName, ConfigType: &accesslog.AccessLog_TypedConfig{TypedConfig: mustAny(cfg)}}
}

// defaultJSONLabels are the fields of istiod's default JSON access log.
func defaultJSONLabels() *structpb.Struct {
	fields := map[string]any{
		"start_time": "%START_TIME%", "method": "%REQ(:METHOD)%", "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
		"protocol": "%PROTOCOL%", "response_code": "%RESPONSE_CODE%", "response_flags": "%RESPONSE_FLAGS%",
		"response_code_details": "%RESPONSE_CODE_DETAILS%", "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
		"upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%", "bytes_received": "%BYTES_RECEIVED%",
		"bytes_sent": "%BYTES_SENT%", "duration": "%DURATION%",
		"upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
		"user_agent": "%REQ(USER-AGENT)%", "request_id": "%REQ(X-REQUEST-ID)%", "authority": "%REQ(:AUTHORITY)%",
		"upstream_host": "%UPSTREAM_HOST%", "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
		"upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%", "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
		"downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%", "requested_server_name": "%REQUESTED_SERVER_NAME%",
		"route_name": "%ROUTE_NAME%",
	}
	s, _ := structpb.NewStruct(fields)
	return s
}

// addAccessLogs attaches the mesh's access loggers to every HTTP connection
// manager and TCP proxy of a sidecar's listeners. An ALS logger whose
// collector cluster is not among clusters is left out.
func (b *builder) addAccessLogs(listeners []*listener.Listener, clusters []*cluster.Cluster) {
	if len(b.x.logs.http) == 0 && len(b.x.logs.tcp) == 0 {
		return
	}
	have := map[string]bool{}
	for _, c := range clusters {
		have[c.Name] = true
	}
	usable := func(ls []accessLogger) []*accesslog.AccessLog {
		var out []*accesslog.AccessLog
		for _, l := range ls {
			if l.cluster == "" || have[l.cluster] {
				out = append(out, l.log)
			}
		}
		return out
	}
	httpLogs, tcpLogs := usable(b.x.logs.http), usable(b.x.logs.tcp)
	for _, l := range listeners {
		chains := l.GetFilterChains()
		if d := l.GetDefaultFilterChain(); d != nil {
			chains = append(chains[:len(chains):len(chains)], d)
		}
		for _, fc := range chains {
			for _, f := range fc.GetFilters() {
				setAccessLogs(f, httpLogs, tcpLogs)
			}
		}
	}
}

// setAccessLogs sets the loggers on f when it is an HTTP connection manager
// or a TCP proxy. Filters are built per scope, so f is the scope's own.
func setAccessLogs(f *listener.Filter, httpLogs, tcpLogs []*accesslog.AccessLog) {
	tc := f.GetTypedConfig()
	switch {
	case tc.MessageIs(&hcm.HttpConnectionManager{}) && len(httpLogs) > 0:
		m := &hcm.HttpConnectionManager{}
		if tc.UnmarshalTo(m) == nil {
			m.AccessLog = httpLogs
			f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}
		}
	case tc.MessageIs(&tcp.TcpProxy{}) && len(tcpLogs) > 0:
		m := &tcp.TcpProxy{}
		if tc.UnmarshalTo(m) == nil {
			m.AccessLog = tcpLogs
			f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}
		}
	}
}
