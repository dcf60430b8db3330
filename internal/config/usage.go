package config

import (
	"fmt"
	"io"

	"github.com/meshd/meshd/internal/textwrap"
)

// Usage writes meshd serve's help: every setting with its flag, environment
// variable, default, meaning and istiod counterpart.
func Usage(w io.Writer) {
	fmt.Fprint(w, `usage: meshd serve [--kubeconfig FILE | --config-dir DIR] [flags]

Serves xDS (ADS, state of the world and delta) and the admin endpoints.
Without --config-dir meshd watches a Kubernetes cluster: --kubeconfig, else
$KUBECONFIG, else the in-cluster service account.

Each setting is taken from its flag, else its environment variable (istiod's
name where istiod has the knob, so existing tuning carries over), else its
default. An invalid value stops start-up with a message naming it.

Settings:
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
		if o.istiod != "" {
			fmt.Fprintf(w, "        istiod: %s\n", o.istiod)
		}
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
