package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/internal/testcerts"
)

// TestEnvoyGatewayTLSTermination: an ingress gateway (a real Envoy router,
// its own network namespace, authenticated on meshd's secure port with a
// TokenRequest token) terminates TLS with certificates from Kubernetes
// Secrets of its namespace (credentialName), served by meshd over SDS:
// an HTTPS client verifies the certificate against its CA and reaches the
// backend; the Secret rotated, the new certificate is served without
// restarting Envoy and only SDS is updated; a MUTUAL server refuses a
// client without a certificate and serves one with a certificate of the
// Secret's CA. A gateway on the plaintext port would be sent no secret.
func TestEnvoyGatewayTLSTermination(t *testing.T) {
	const ns, sys, webHost, partnerHost = "gw-tls", "gw-tls-system", "web.bank.example", "partner.bank.example"
	c := newCluster(t)
	c.namespace(sys, nil)
	c.namespace(ns, nil)
	c.serviceAccount(ns, "ingress")
	c.echoService(ns, 64)
	ca := testcerts.NewCA("bank ingress CA", testcerts.Options{})
	leaf := func(cn string) *testcerts.Cert {
		return testcerts.NewLeaf(cn, ca, testcerts.Options{DNSNames: []string{cn}})
	}
	web := leaf(webHost)
	c.tlsSecret(ns, "web-cert", web, nil)
	c.tlsSecret(ns, "partner-cert", leaf(partnerHost), ca)
	c.createGateway(ns, "edge", map[string]string{"istio": "ingress-tls"}, []*networking.Server{
		{Port: &networking.Port{Number: 8443, Name: "https-web", Protocol: "HTTPS"}, Hosts: []string{webHost},
			Tls: &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_SIMPLE, CredentialName: "web-cert"}},
		{Port: &networking.Port{Number: 9443, Name: "https-partner", Protocol: "HTTPS"}, Hosts: []string{partnerHost},
			Tls: &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_MUTUAL, CredentialName: "partner-cert"}},
	})
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns}}
	vs.Spec.Hosts, vs.Spec.Gateways = []string{webHost, partnerHost}, []string{"edge"}
	vs.Spec.Http = []*networking.HTTPRoute{{Route: dst("echo", "")}}
	_, err := c.istio.NetworkingV1().VirtualServices(ns).Create(c.ctx, vs, metav1.CreateOptions{})
	require.NoError(t, err)

	m, addr := startSecureMeshdOnAll(t, sys)
	n := harness.NewChildNet(t, 6)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	gw := startSidecarIn(t, m, n, ns, "ingress-0", n.PeerIP, map[string]string{"istio": "ingress-tls"}, "--type", "router",
		"--tls", "--xds-address", net.JoinHostPort(n.HostIP, port), "--root-cert", writeFile(t, "root-cert.pem", c.rootCert(ns)),
		"--token-file", writeFile(t, "istio-token", []byte(c.token(ns, "ingress"))), "--service-account", "ingress",
		"--tls-server-name", "istiod."+sys+".svc")

	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	webURL := "https://" + net.JoinHostPort(n.PeerIP, "8443") + "/"
	client := func(host string, cert *testcerts.Cert) *http.Client {
		cfg := &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
		if cert != nil {
			pair, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
			require.NoError(t, err)
			cfg.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	}
	served := func() (backend string, serial string) {
		r := getVia(client(webHost, nil), webURL, webHost)
		if r.Err != nil || r.Status != http.StatusOK {
			return "", ""
		}
		return r.Backend, servedSerial(t, n.PeerIP+":8443", webHost, roots)
	}
	var backend, serial string
	require.Eventually(t, func() bool { backend, serial = served(); return backend == "echo-0" }, 30*time.Second, 100*time.Millisecond,
		"HTTPS through the gateway with the certificate of Secret web-cert")
	assert.Equal(t, web.Certificate().SerialNumber.String(), serial)

	// Rotation: a new certificate in the Secret is served, over SDS alone.
	lds := gw.statSum(t, "listener_manager.lds.update_success")
	sds := gw.statSum(t, "sds.kubernetes_web-cert.update_success")
	rotated := leaf(webHost)
	c.tlsSecret(ns, "web-cert", rotated, nil)
	require.Eventually(t, func() bool { _, serial = served(); return serial == rotated.Certificate().SerialNumber.String() },
		30*time.Second, 100*time.Millisecond, "the rotated certificate is served")
	assert.Greater(t, gw.statSum(t, "sds.kubernetes_web-cert.update_success"), sds, "the secret came over SDS")
	assert.Equal(t, lds, gw.statSum(t, "listener_manager.lds.update_success"), "listeners were not updated")

	// MUTUAL: no client certificate, no request; one of the Secret's CA, served.
	partnerURL := "https://" + net.JoinHostPort(n.PeerIP, "9443") + "/"
	require.Eventually(t, func() bool {
		return getVia(client(partnerHost, leaf("partner-client")), partnerURL, partnerHost).Backend == "echo-0"
	}, 20*time.Second, 100*time.Millisecond, "a client with a certificate of the partner CA")
	r := getVia(client(partnerHost, nil), partnerURL, partnerHost)
	assert.Error(t, r.Err, "a client without a certificate is refused in the handshake")
	other := testcerts.NewLeaf("stranger", testcerts.NewCA("other CA", testcerts.Options{}), testcerts.Options{})
	assert.Error(t, getVia(client(partnerHost, other), partnerURL, partnerHost).Err, "a certificate of another CA is refused")

	assert.NotContains(t, gw.ConfigDump(t), string(rotated.KeyPEM[30:60]), "Envoy's dump redacts the key")
}

// servedSerial returns the serial number of the certificate the TLS server
// at addr presents for host, verified against roots.
func servedSerial(t *testing.T, addr, host string, roots *x509.CertPool) string {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12})
	if err != nil {
		return ""
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "")
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// tlsSecret creates or replaces Secret name of type kubernetes.io/tls with
// cert's certificate and key, and ca.crt when ca is given.
func (c *cluster) tlsSecret(ns, name string, cert, ca *testcerts.Cert) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": cert.CertPEM, "tls.key": cert.KeyPEM}}
	if ca != nil {
		s.Data["ca.crt"] = ca.CertPEM
	}
	cur, err := c.kube.CoreV1().Secrets(ns).Get(c.ctx, name, metav1.GetOptions{})
	if err == nil {
		cur.Data = s.Data
		_, err = c.kube.CoreV1().Secrets(ns).Update(c.ctx, cur, metav1.UpdateOptions{})
	} else {
		_, err = c.kube.CoreV1().Secrets(ns).Create(c.ctx, s, metav1.CreateOptions{})
	}
	require.NoError(c.t, err)
}

// createGateway creates Gateway name in ns selecting selector.
func (c *cluster) createGateway(ns, name string, selector map[string]string, servers []*networking.Server) {
	gw := &networkingv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	gw.Spec.Selector, gw.Spec.Servers = selector, servers
	_, err := c.istio.NetworkingV1().Gateways(ns).Create(context.Background(), gw, metav1.CreateOptions{})
	require.NoError(c.t, err)
}
