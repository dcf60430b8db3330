package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/meshd/meshd/internal/push"
)

// settings are meshd serve's flags and environment.
type settings struct {
	configDir      string
	kubeconfig     string
	meshConfigFile string
	istioNamespace string
	meshConfigMap  string
	xdsAddr        string
	adminAddr      string
	domain         string
	logLevel       string
	logFormat      string
	pollInterval   time.Duration
	debounce       push.Options
}

// envDoc documents the istiod environment variables meshd honours.
const envDoc = `
Environment (istiod's names, so existing tuning carries over):
  PILOT_DEBOUNCE_AFTER       quiet period before a push (default 100ms; istiod: same)
  PILOT_DEBOUNCE_MAX         longest a change waits for a push (default 10s; istiod: same)
  PILOT_ENABLE_EDS_DEBOUNCE  debounce endpoint-only changes too (default true; istiod: same)
`

func parseSettings(args []string) (*settings, error) {
	s := &settings{debounce: push.DefaultOptions()}
	fs := flag.NewFlagSet("meshd serve", flag.ContinueOnError)
	fs.StringVar(&s.configDir, "config-dir", "", "serve a directory of Kubernetes/Istio YAML manifests (file provider) instead of a cluster")
	fs.StringVar(&s.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster to watch (default $KUBECONFIG; in a pod, the in-cluster config)")
	fs.StringVar(&s.meshConfigFile, "mesh-config", "", "MeshConfig YAML file (istiod's mesh config); replaces the istio ConfigMap in either provider mode")
	fs.StringVar(&s.istioNamespace, "istio-namespace", envOr("POD_NAMESPACE", "istio-system"), "namespace of the istio ConfigMap (istiod: its own namespace, $POD_NAMESPACE)")
	fs.StringVar(&s.meshConfigMap, "mesh-configmap", "istio", "name of the ConfigMap whose key \"mesh\" holds MeshConfig (istiod: istio)")
	fs.StringVar(&s.xdsAddr, "xds-address", ":15010", "plaintext ADS listen address (istiod: 15010)")
	fs.StringVar(&s.adminAddr, "admin-address", ":15014", "monitoring and debug HTTP listen address (istiod: 15014)")
	fs.StringVar(&s.domain, "domain", "cluster.local", "cluster DNS domain")
	fs.StringVar(&s.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&s.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&s.pollInterval, "poll-interval", 250*time.Millisecond, "how often the file provider checks --config-dir for changes")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: meshd serve [--kubeconfig FILE | --config-dir DIR] [flags]\n\n"+
			"Without --config-dir meshd watches a Kubernetes cluster: --kubeconfig, else\n"+
			"$KUBECONFIG, else the in-cluster service account.\n\nFlags:")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), envDoc)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if s.configDir != "" && explicit["kubeconfig"] {
		return nil, fmt.Errorf("--config-dir and --kubeconfig are exclusive: pick the file provider or a cluster")
	}
	if s.configDir != "" {
		s.kubeconfig = "" // $KUBECONFIG does not matter to the file provider
	}
	var err error
	if s.debounce.DebounceAfter, err = envDuration("PILOT_DEBOUNCE_AFTER", s.debounce.DebounceAfter); err != nil {
		return nil, err
	}
	if s.debounce.DebounceMax, err = envDuration("PILOT_DEBOUNCE_MAX", s.debounce.DebounceMax); err != nil {
		return nil, err
	}
	if s.debounce.EnableEDSDebounce, err = envBool("PILOT_ENABLE_EDS_DEBOUNCE", s.debounce.EnableEDSDebounce); err != nil {
		return nil, err
	}
	return s, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) (time.Duration, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("environment variable %s=%q: want a positive duration such as 100ms or 10s", name, v)
	}
	return d, nil
}

func envBool(name string, def bool) (bool, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("environment variable %s=%q: want true or false", name, v)
	}
	return b, nil
}

func (s *settings) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", s.logLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch s.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", s.logFormat)
}

// source describes where config comes from, for the start-up log line.
func (s *settings) source() string {
	switch {
	case s.configDir != "":
		return "dir:" + s.configDir
	case s.kubeconfig != "":
		return "kubeconfig:" + s.kubeconfig
	}
	return "in-cluster"
}
