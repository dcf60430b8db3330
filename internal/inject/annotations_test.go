package inject

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAnnotationValues(t *testing.T) {
	good := map[string][]string{
		AnnoProxyCPU:               {"100m", "2", "0.5"},
		AnnoProxyMemoryLimit:       {"1Gi", "512Mi", "1e9"},
		AnnoIncludeOutboundIPs:     {"*", "", "10.0.0.0/8", "10.0.0.0/8, 172.16.0.0/12", "fd00::/8"},
		AnnoExcludeOutboundIPs:     {"", "192.168.1.1/32"},
		AnnoIncludeInboundPorts:    {"*", "", "8080,8443"},
		AnnoExcludeOutboundPorts:   {"5432", " 5432, 6379"},
		AnnoLogLevel:               {"warning", "debug", "off"},
		AnnoComponentLogLevel:      {"misc:error", "upstream:debug,connection:trace"},
		AnnoAgentLogLevel:          {"info", "default:info,xdsproxy:debug"},
		AnnoInterceptionMode:       {"REDIRECT", "TPROXY", "NONE"},
		AnnoStatusPort:             {"15020", "0"},
		AnnoReadinessPeriod:        {"5"},
		AnnoRewriteProbes:          {"true", "false"},
		AnnoJobWrap:                {"true", "false"},
		AnnoExcludeInterfaces:      {"eth1", "eth1,net1"},
		AnnoProxyImage:             {"reg.bank/istio/proxyv2:1.29.6"},
		"sidecar.istio.io/unknown": {"anything"},
	}
	for name, values := range good {
		for _, v := range values {
			assert.NoError(t, validateAnnotations(map[string]string{name: v}), "%s=%q", name, v)
		}
	}
	bad := map[string][]string{
		AnnoProxyCPU:             {"lots", "1 cpu", ""},
		AnnoIncludeOutboundIPs:   {"10.0.0.0/99", "10.0.0.1", "*,10.0.0.0/8"},
		AnnoExcludeOutboundIPs:   {"*"},
		AnnoExcludeInboundPorts:  {"*", "http", "70000"},
		AnnoLogLevel:             {"loud", "WARNING"},
		AnnoComponentLogLevel:    {"misc", "misc:loud"},
		AnnoAgentLogLevel:        {"verbose", ":info"},
		AnnoInterceptionMode:     {"redirect", "MAGIC"},
		AnnoStatusPort:           {"-1", "65536"},
		AnnoReadinessFailure:     {"-3", "x"},
		AnnoNativeSidecar:        {"yes"},
		AnnoExcludeInterfaces:    {"", "a/b", "averyveryverylongname"},
		AnnoBootstrapOverride:    {"my-bootstrap"},
		AnnoInjectTemplates:      {"sidecar,custom"},
		AnnoUserVolume:           {`{"v":{"emptyDir":{}}}`},
		AnnoUserVolumeMount:      {`{"v":{"mountPath":"/v"}}`},
		AnnoIncludeOutboundPorts: {"80;443"},
	}
	for name, values := range bad {
		for _, v := range values {
			err := validateAnnotations(map[string]string{name: v})
			if assert.Error(t, err, "%s=%q", name, v) {
				assert.Contains(t, err.Error(), "annotation "+name+" ", "the message names the annotation")
				assert.IsType(t, Rejection(""), err)
			}
		}
	}
}
