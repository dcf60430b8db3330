package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/testcerts"
)

// testToken stands in for a service-account token (a JWT).
const testToken = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOlsiaXN0aW8tY2EiXX0.c2ln"

// tlsFiles writes a mesh root certificate and a token file (with the
// trailing newline kubectl leaves) and returns their paths.
func tlsFiles(t *testing.T) (root, token string) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "root-cert.pem")
	token = filepath.Join(dir, "istio-token")
	require.NoError(t, os.WriteFile(root, testcerts.NewCA("mesh root", testcerts.Options{}).CertPEM, 0o644))
	require.NoError(t, os.WriteFile(token, []byte(testToken+"\n"), 0o600))
	return root, token
}

// tlsArgs are the flags of a --tls bootstrap with fresh files.
func tlsArgs(t *testing.T) []string {
	t.Helper()
	root, token := tlsFiles(t)
	return []string{"--tls", "--root-cert", root, "--token-file", token}
}

func TestParseTLS(t *testing.T) {
	root, token := tlsFiles(t)
	o, err := Parse([]string{"--tls", "--root-cert", root, "--token-file", token}, env(nil), "h")
	require.NoError(t, err)
	require.True(t, o.TLS)
	require.Equal(t, "127.0.0.1:15012", o.XDSAddress, "the default host, meshd's secure port")
	require.Equal(t, DefaultSecureXDSAddress, o.XDSAddress)
	require.Equal(t, root, o.RootCert)
	require.Equal(t, testToken, o.Token, "white space trimmed")
	require.Equal(t, "istiod.istio-system.svc", o.TLSServerName)
	require.Empty(t, o.Warnings())

	_, err = Parse([]string{"--tls"}, env(map[string]string{"XDS_ROOT_CA": root}), "h")
	require.ErrorContains(t, err, "--tls needs --token-file", "--token-file has no variable")
	o, err = Parse([]string{"--tls", "--xds-address", "meshd.mesh.svc:443", "--token-file", token},
		env(map[string]string{"XDS_ROOT_CA": root, "ISTIOD_SAN": "istiod.mesh.svc"}), "h")
	require.NoError(t, err)
	require.Equal(t, "meshd.mesh.svc:443", o.XDSAddress, "an explicit address is kept")
	require.Equal(t, root, o.RootCert)
	require.Equal(t, "istiod.mesh.svc", o.TLSServerName)
}

func TestParseTLSRelativeRootCertIsMadeAbsolute(t *testing.T) {
	root, token := tlsFiles(t)
	t.Chdir(filepath.Dir(root))
	o, err := Parse([]string{"--tls", "--root-cert", "root-cert.pem", "--token-file", token}, env(nil), "h")
	require.NoError(t, err)
	require.True(t, filepath.IsAbs(o.RootCert), "Envoy reads it from its own working directory")
	require.Equal(t, "root-cert.pem", filepath.Base(o.RootCert))
}

// Without --tls, nothing changes: the plaintext port, no TLS fields, and
// the TLS variables are ignored.
func TestParseWithoutTLS(t *testing.T) {
	o, err := Parse(nil, env(map[string]string{"XDS_ROOT_CA": "/nowhere", "ISTIOD_SAN": "x.y.svc"}), "h")
	require.NoError(t, err)
	require.False(t, o.TLS)
	require.Equal(t, "127.0.0.1:15010", o.XDSAddress)
	require.Empty(t, o.RootCert)
	require.Empty(t, o.TokenFile)
	require.Empty(t, o.Token)
	require.Empty(t, o.TLSServerName)
}

func TestParseTLSErrors(t *testing.T) {
	root, token := tlsFiles(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	empty := write("empty-token", " \n\t\n")
	twoTokens := write("two-tokens", "abc\ndef\n")
	keyOnly := write("key.pem", string(testcerts.NewCA("ca", testcerts.Options{}).KeyPEM))
	notPEM := write("root.txt", "not a certificate\n")
	badCert := write("bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	for _, tc := range []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"no root cert", []string{"--tls", "--token-file", token}, nil, "--tls needs --root-cert"},
		{"no token file", []string{"--tls", "--root-cert", root}, nil, "--tls needs --token-file"},
		{"empty token", []string{"--tls", "--root-cert", root, "--token-file", empty}, nil,
			`invalid value "` + empty + `" for flag --token-file: the file is empty`},
		{"two tokens", []string{"--tls", "--root-cert", root, "--token-file", twoTokens}, nil,
			"for flag --token-file: white space or a character other than printable ASCII inside the token"},
		{"missing token", []string{"--tls", "--root-cert", root, "--token-file", filepath.Join(dir, "nope")}, nil,
			"for flag --token-file: open "},
		{"root key only", []string{"--tls", "--root-cert", keyOnly, "--token-file", token}, nil,
			`invalid value "` + keyOnly + `" for flag --root-cert: the file holds no PEM certificate`},
		{"root not PEM", []string{"--tls", "--root-cert", notPEM, "--token-file", token}, nil,
			"for flag --root-cert: the file holds no PEM certificate"},
		{"root bad cert", []string{"--tls", "--root-cert", badCert, "--token-file", token}, nil,
			"for flag --root-cert: certificate 1: "},
		{"root missing", []string{"--tls", "--root-cert", filepath.Join(dir, "nope.pem"), "--token-file", token}, nil,
			"for flag --root-cert: open "},
		{"root env", []string{"--tls", "--token-file", token}, map[string]string{"XDS_ROOT_CA": notPEM},
			`environment variable XDS_ROOT_CA="` + notPEM + `" (for --root-cert): the file holds no PEM certificate`},
		{"server name", []string{"--tls-server-name", "Istiod"}, nil, "flag --tls-server-name: want a DNS name"},
		{"tls value", []string{"--tls=maybe"}, nil, `invalid value "maybe" for flag --tls: want true or false`},
		{"root cert without tls", []string{"--root-cert", root}, nil, "--root-cert is only used with --tls: add --tls"},
		{"token without tls", []string{"--token-file", token}, nil, "--token-file is only used with --tls"},
		{"server name without tls", []string{"--tls-server-name", "istiod.mesh.svc"}, nil, "--tls-server-name is only used with --tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.args, env(tc.vars), "h")
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.ErrorIs(t, err, ErrUsage)
		})
	}
}

func TestTLSBootstrap(t *testing.T) {
	for _, format := range []string{FormatJSON, FormatYAML} {
		t.Run(format, func(t *testing.T) {
			o := mustParse(t, append(tlsArgs(t), "--tls-server-name", "istiod.mesh.svc", "--format", format)...)
			out, err := Generate(o)
			require.NoError(t, err)
			b := parseOutput(t, out, format)

			svc := b.GetDynamicResources().GetAdsConfig().GetGrpcServices()[0]
			require.Equal(t, XDSClusterName, svc.GetEnvoyGrpc().GetClusterName())
			require.Len(t, svc.GetInitialMetadata(), 1)
			require.Equal(t, "authorization", svc.GetInitialMetadata()[0].GetKey())
			require.Equal(t, "Bearer "+testToken, svc.GetInitialMetadata()[0].GetValue())

			clusters, _ := staticParts(t, b)
			xds := clusters[XDSClusterName]
			require.Equal(t, uint32(15012), xds.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].
				GetEndpoint().GetAddress().GetSocketAddress().GetPortValue())
			ts := xds.GetTransportSocket()
			require.Equal(t, "envoy.transport_sockets.tls", ts.GetName())
			tc := &tlsv3.UpstreamTlsContext{}
			require.NoError(t, ts.GetTypedConfig().UnmarshalTo(tc))
			require.Equal(t, "istiod.mesh.svc", tc.GetSni())
			require.Equal(t, []string{"h2"}, tc.GetCommonTlsContext().GetAlpnProtocols())
			v := tc.GetCommonTlsContext().GetValidationContext()
			require.Equal(t, o.RootCert, v.GetTrustedCa().GetFilename())
			require.Len(t, v.GetMatchTypedSubjectAltNames(), 1)
			san := v.GetMatchTypedSubjectAltNames()[0]
			require.Equal(t, tlsv3.SubjectAltNameMatcher_DNS, san.GetSanType())
			require.Equal(t, "istiod.mesh.svc", san.GetMatcher().GetExact())

			for _, c := range []string{PrometheusClusterName, AdminClusterName} {
				require.Nil(t, clusters[c].GetTransportSocket(), "%s stays plaintext", c)
			}
		})
	}
}

func TestNoTLSBootstrap(t *testing.T) {
	b, err := Build(mustParse(t))
	require.NoError(t, err)
	require.Empty(t, b.GetDynamicResources().GetAdsConfig().GetGrpcServices()[0].GetInitialMetadata())
	clusters, _ := staticParts(t, b)
	require.Nil(t, clusters[XDSClusterName].GetTransportSocket())
	out, err := Marshal(b, FormatJSON)
	require.NoError(t, err)
	for _, absent := range []string{"transport_socket", "initial_metadata", "authorization"} {
		require.NotContains(t, string(out), absent)
	}
}

func TestTLSWarnings(t *testing.T) {
	o := mustParse(t, append(tlsArgs(t), "--xds-address", "meshd.istio-system.svc:15010")...)
	require.Len(t, o.Warnings(), 1)
	require.Contains(t, o.Warnings()[0], "port 15010 is meshd's default plaintext port")

	o = mustParse(t, "--xds-address", "10.0.0.1:15012")
	require.Len(t, o.Warnings(), 1)
	require.Contains(t, o.Warnings()[0], "port 15012 is meshd's default secure port")
	require.Contains(t, o.Warnings()[0], "add --tls")

	o = mustParse(t, append(tlsArgs(t), "--admin-address", "10.0.0.5")...)
	require.Len(t, o.Warnings(), 1)
	require.Contains(t, o.Warnings()[0], "the service-account token of --token-file")
}

func TestWriteOutputMode(t *testing.T) {
	dir := t.TempDir()
	plain := mustParse(t, "--output", filepath.Join(dir, "plain.json"))
	require.NoError(t, WriteOutput(plain, []byte("{}\n")))
	info, err := os.Stat(plain.Output)
	require.NoError(t, err)
	require.Zero(t, info.Mode().Perm()&^0o644, "0644 less the umask, as before --tls")
	require.NoError(t, os.Chmod(plain.Output, 0o644))

	secret := mustParse(t, append(tlsArgs(t), "--output", filepath.Join(dir, "secret.json"))...)
	require.NoError(t, WriteOutput(secret, []byte("{}\n")))
	requireMode(t, secret.Output, 0o600)

	// A file that exists, readable by all, is restricted before the token
	// goes in.
	secret.Output = plain.Output
	require.NoError(t, WriteOutput(secret, []byte("token\n")))
	requireMode(t, secret.Output, 0o600)
	got, err := os.ReadFile(secret.Output)
	require.NoError(t, err)
	require.Equal(t, "token\n", string(got))
}

// requireMode requires file's permission bits to be mode.
func requireMode(t *testing.T, file string, mode os.FileMode) {
	t.Helper()
	info, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, mode, info.Mode().Perm(), file)
}

func TestUsageTLS(t *testing.T) {
	var b strings.Builder
	Usage(&b)
	help := b.String()
	for _, want := range []string{"\n  --tls\n", "--root-cert FILE   (env XDS_ROOT_CA)", "--tls-server-name NAME   (env ISTIOD_SAN)",
		"default: istiod.istio-system.svc", "127.0.0.1:15012 with --tls", "mode 0600", "/config_dump", "pilot-agent"} {
		require.Contains(t, help, want)
	}
	require.NotContains(t, help, " \n", "no trailing white space")
}
