package ca

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of citadel_server_csr_sign_err_count's "error" label, as istiod's
// caerror.Error.ErrorType.
const (
	signErrCSR     = "CSR_ERROR"
	signErrTTL     = "TTL_ERROR"
	signErrCertGen = "CERT_GEN_ERROR"
)

// certServerMetrics are istiod's Citadel server counters, same names and
// help text (security/pkg/server/ca/monitoring.go).
type certServerMetrics struct {
	csr          prometheus.Counter
	authnError   prometheus.Counter
	success      prometheus.Counter
	csrParse     prometheus.Counter
	idExtraction prometheus.Counter
	signErrors   *prometheus.CounterVec
}

// newCertServerMetrics builds the counters and registers them on reg; a nil
// reg leaves them unregistered.
func newCertServerMetrics(reg prometheus.Registerer) (*certServerMetrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &certServerMetrics{
		csr:          counter("citadel_server_csr_count", "The number of CSRs received by Citadel server."),
		authnError:   counter("citadel_server_authentication_failure_count", "The number of authentication failures."),
		success:      counter("citadel_server_success_cert_issuance_count", "The number of certificates issuances that have succeeded."),
		csrParse:     counter("citadel_server_csr_parsing_err_count", "The number of errors occurred when parsing the CSR."),
		idExtraction: counter("citadel_server_id_extraction_err_count", "The number of errors occurred when extracting the ID from CSR."),
		signErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "citadel_server_csr_sign_err_count",
			Help: "The number of errors occurred when signing the CSR.",
		}, []string{"error"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.csr, m.authnError, m.success, m.csrParse, m.idExtraction, m.signErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering Citadel server metrics: %w", err)
		}
	}
	return m, nil
}
