package e2e

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type objectError struct {
	Kind, Namespace, Name, Source, Field, Message string
}

// TestBadInputIsReportedPerObject: a malformed YAML document, an object with
// an invalid field and a VirtualService pointing at an unknown host are each
// reported (log line and /debug/configz naming file, object and field) while
// every other object keeps being served.
func TestBadInputIsReportedPerObject(t *testing.T) {
	a := startBackend(t, "a")
	dir := t.TempDir()
	writeFile(t, dir, "mesh.yaml", meshYAML+fmt.Sprintf(`---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo-a
  namespace: demo
  labels: {kubernetes.io/service-name: echo}
addressType: IPv4
ports:
- {name: grpc, port: %d}
endpoints:
- addresses: [127.0.0.1]
`, a.port))
	writeFile(t, dir, "broken.yaml", `apiVersion: v1
kind: Service
metadata: {name: broken, namespace: demo
spec: [this is not yaml
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad-weights, namespace: demo}
spec:
  hosts: [echo]
  http:
  - route:
    - destination: {host: echo, subset: v1}
      weight: 70
    - destination: {host: echo, subset: v2}
      weight: 70
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: to-nowhere, namespace: demo}
spec:
  hosts: [echo]
  http:
  - route:
    - destination: {host: nowhere.demo.svc.cluster.local}
`)
	m := startMeshd(t, dir)

	var configz struct {
		Errors []objectError `json:"errors"`
	}
	m.getJSON(t, "/debug/configz", &configz)
	t.Logf("configz errors: %+v", configz.Errors)
	find := func(name string) *objectError {
		for i := range configz.Errors {
			if configz.Errors[i].Name == name {
				return &configz.Errors[i]
			}
		}
		return nil
	}
	weights := find("bad-weights")
	require.NotNil(t, weights, "the invalid VirtualService is reported")
	assert.Equal(t, "broken.yaml#2", weights.Source)
	assert.Contains(t, weights.Field, "spec.http[0].route")
	nowhere := find("to-nowhere")
	require.NotNil(t, nowhere, "the VirtualService to an unknown host is reported")
	assert.Contains(t, nowhere.Field, "destination.host")
	assert.Contains(t, nowhere.Message, "nowhere.demo.svc.cluster.local")
	malformed := false
	for _, e := range configz.Errors {
		if e.Source == "broken.yaml#1" {
			malformed = true
		}
	}
	assert.True(t, malformed, "the malformed document is reported with its file and position")

	logs := m.Logs()
	assert.Contains(t, logs, "broken.yaml#1")
	assert.Contains(t, logs, "bad-weights")

	// Everything else is served: the registry lists echo and RPCs reach it.
	var services []struct{ Hostname string }
	m.getJSON(t, "/debug/registryz", &services)
	hosts := []string{}
	for _, s := range services {
		hosts = append(hosts, s.Hostname)
	}
	assert.Contains(t, hosts, "echo.demo.svc.cluster.local")
	conn := dialXDS(t, m, "xds:///echo.demo.svc.cluster.local:7070")
	got := spread(t, conn, 20)
	assert.Equal(t, 20, got["a"])
}
