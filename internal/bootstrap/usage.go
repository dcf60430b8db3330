package bootstrap

import (
	"fmt"
	"io"

	"github.com/meshd/meshd/internal/textwrap"
)

// Usage writes meshd bootstrap's help: every flag with its environment
// variable, default and meaning.
func Usage(w io.Writer) {
	fmt.Fprint(w, `usage: meshd bootstrap [flags]

Prints an Envoy bootstrap (envoy.config.bootstrap.v3.Bootstrap) that makes
Envoy a sidecar or gateway of meshd: ADS over the xds-grpc cluster to
--xds-address, the node ID and node metadata Istio's pilot-agent would send,
admin on --admin-address:--admin-port, Prometheus stats on --stats-port and
readiness on --readiness-port. Run it with

  envoy -c <(meshd bootstrap [flags]) --disable-hot-restart
  envoy -c bootstrap.json --disable-hot-restart   (or --base-id N per Envoy)

The output is JSON unless --format yaml: Envoy parses -c FILE as YAML only
when FILE ends in .yaml or .yml, and as JSON otherwise (/dev/fd/63 too).

Each setting is taken from its flag, else its environment variable if it has
one (the variables Istio's injector gives a pod), else its default. An
invalid value is refused with a message naming it (exit status 2); an
--admin-address other than loopback is allowed with a warning on standard
error (Envoy's admin has no authentication).

With --tls, Envoy dials meshd's secure port (15012, as istiod) over TLS,
trusting --root-cert and checking that the serving certificate is for
--tls-server-name, and sends the service-account token of --token-file
(audience istio-ca) as "authorization: Bearer" metadata on every stream.
The token is copied into the bootstrap, so the bootstrap is a secret:
--output writes it with mode 0600, and Envoy's admin /config_dump shows it.
meshd closes each connection after --max-connection-age (30m by default),
so once the token expires Envoy cannot reconnect and stops getting config
updates: generate the bootstrap again and restart Envoy. pilot-agent, which
renews the token, is the production path.

Flags:
`)
	for _, o := range options(defaults()) {
		fmt.Fprintf(w, "\n  --%s", o.flag)
		if o.arg != "" {
			fmt.Fprintf(w, " %s", o.arg)
		}
		if o.env != "" {
			fmt.Fprintf(w, "   (env %s)", o.env)
		}
		fmt.Fprintf(w, "\n%s", textwrap.Wrap(o.usage, "        ", 78))
		fmt.Fprintf(w, "        default: %s\n", o.defaultText())
	}
}

// defaultText is the default as shown in help.
func (o option) defaultText() string {
	if o.def != "" {
		return o.def
	}
	if v := o.value.String(); v != "" {
		return v
	}
	return `""`
}
