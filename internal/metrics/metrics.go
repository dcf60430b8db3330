// Package metrics defines meshd's Prometheus metrics. Names and labels follow
// istiod's (pilot_*) so existing dashboards and alerts keep working; metrics
// istiod lacks are prefixed meshd_.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector meshd exports, registered on its own registry.
type Metrics struct {
	Registry *prometheus.Registry

	// XDSClients is pilot_xds: connected xDS streams, by version (always "meshd").
	XDSClients *prometheus.GaugeVec
	// Pushes is pilot_xds_pushes{type}: responses sent, by xDS type (cds, eds, lds, rds).
	Pushes *prometheus.CounterVec
	// Rejects is pilot_total_xds_rejects{type}: NACKs received, by xDS type.
	Rejects *prometheus.CounterVec
	// ConvergenceTime is pilot_proxy_convergence_time: push start to send.
	ConvergenceTime prometheus.Histogram
	// DebounceTime is pilot_debounce_time: first event to push start.
	DebounceTime prometheus.Histogram
	// PushTriggers is pilot_push_triggers{type}: pushes by trigger kind.
	PushTriggers *prometheus.CounterVec
	// Services is pilot_services: services known to the registry.
	Services prometheus.Gauge
	// ConfigErrors is meshd_config_errors{kind}: user objects currently rejected.
	ConfigErrors *prometheus.GaugeVec
	// SnapshotRejects is meshd_snapshot_rejects_total: scope snapshots that failed
	// validation or the integrity check and were not served.
	SnapshotRejects prometheus.Counter
	// StreamsRefused is meshd_xds_streams_refused_total: new ADS streams
	// refused by the new-stream rate limit (PILOT_MAX_REQUESTS_PER_SECOND).
	StreamsRefused prometheus.Counter
	// AuthFailures is meshd_xds_auth_failures_total{reason}: secure-port ADS
	// streams refused because the caller's token was not accepted
	// (unauthenticated) or its node claims another namespace or service
	// account than the token's (namespace, service_account), and SDS
	// requests left unanswered on streams without an identity
	// (secrets_unauthenticated).
	AuthFailures *prometheus.CounterVec
	// InboundUpdates is pilot_inbound_updates{type}: changes received from
	// the providers, by kind.
	InboundUpdates *prometheus.CounterVec
	// ConfigSize is pilot_xds_config_size_bytes{type}: size of each response.
	ConfigSize *prometheus.HistogramVec
	// Propagation is meshd_config_propagation_seconds{type}: from the moment
	// a provider saw a change to the proxy's ACK of the response carrying it.
	Propagation *prometheus.HistogramVec
}

// AuthFailureReasons are the reason labels of meshd_xds_auth_failures_total.
var AuthFailureReasons = []string{"unauthenticated", "namespace", "service_account", "secrets_unauthenticated"}

// New creates and registers meshd's metrics on a fresh registry, with the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		XDSClients: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pilot_xds", Help: "Number of endpoints connected to this pilot using XDS.",
		}, []string{"version"}),
		Pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pilot_xds_pushes", Help: "Pilot build and send errors for lds, rds, cds and eds.",
		}, []string{"type"}),
		Rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pilot_total_xds_rejects", Help: "Total number of XDS responses from pilot rejected by proxy.",
		}, []string{"type"}),
		ConvergenceTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pilot_proxy_convergence_time", Help: "Delay in seconds between config change and a proxy receiving all required configuration.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 3, 5, 10, 20, 30},
		}),
		DebounceTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pilot_debounce_time", Help: "Delay in seconds between the first config enters debouncing and the merged push request is pushed into the push queue.",
			Buckets: []float64{.01, .1, 1, 3, 5, 10, 20, 30},
		}),
		PushTriggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pilot_push_triggers", Help: "Total number of times a push was triggered, labeled by reason for the push.",
		}, []string{"type"}),
		Services: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pilot_services", Help: "Total services known to pilot.",
		}),
		ConfigErrors: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshd_config_errors", Help: "User config objects currently rejected, by kind.",
		}, []string{"kind"}),
		SnapshotRejects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshd_snapshot_rejects_total", Help: "Scope snapshots that failed validation or the referential-integrity check and were not served.",
		}),
		StreamsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshd_xds_streams_refused_total", Help: "New ADS streams refused with RESOURCE_EXHAUSTED by the new-stream rate limit (PILOT_MAX_REQUESTS_PER_SECOND).",
		}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshd_xds_auth_failures_total", Help: "ADS streams of the secure port refused: token not accepted (unauthenticated), or node claiming another namespace or service account than its token's.",
		}, []string{"reason"}),
		InboundUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pilot_inbound_updates", Help: "Total number of updates received by pilot.",
		}, []string{"type"}),
		ConfigSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pilot_xds_config_size_bytes", Help: "Distribution of configuration sizes pushed to clients",
			Buckets: []float64{1, 10000, 1000000, 4000000, 10000000, 40000000},
		}, []string{"type"}),
		Propagation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meshd_config_propagation_seconds",
			Help:    "Delay in seconds from the moment meshd's watcher saw a change to the proxy's ACK of the response carrying it.",
			Buckets: []float64{.005, .01, .025, .05, .1, .15, .2, .3, .5, 1, 2, 5, 10, 30},
		}, []string{"type"}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.XDSClients, m.Pushes, m.Rejects, m.ConvergenceTime, m.DebounceTime, m.PushTriggers,
		m.Services, m.ConfigErrors, m.SnapshotRejects, m.StreamsRefused, m.AuthFailures, m.InboundUpdates, m.ConfigSize, m.Propagation,
	)
	for _, reason := range AuthFailureReasons {
		m.AuthFailures.WithLabelValues(reason) // exported as 0 until the first failure
	}
	return m
}
