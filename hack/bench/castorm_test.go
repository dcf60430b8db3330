package main

import "testing"

func TestPromSum(t *testing.T) {
	text := []byte(`# HELP apiserver_request_total x
apiserver_request_total{code="201",resource="tokenreviews",verb="POST"} 1500
apiserver_request_total{code="500",resource="tokenreviews",verb="POST"} 2
apiserver_request_total{code="200",resource="pods",verb="GET"} 7
apiserver_request_total_other 9
citadel_server_success_cert_issuance_count 2000
`)
	if got := promSum(text, "apiserver_request_total", `resource="tokenreviews"`); got != 1502 {
		t.Errorf("tokenreviews: got %v, want 1502", got)
	}
	if got := promSum(text, "apiserver_request_total"); got != 1509 {
		t.Errorf("all requests: got %v, want 1509", got)
	}
	if got := promSum(text, "citadel_server_success_cert_issuance_count"); got != 2000 {
		t.Errorf("issued: got %v, want 2000", got)
	}
}
