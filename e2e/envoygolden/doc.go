// Package envoygolden loads every translate/testdata golden case into real
// Envoy (bin/envoy, `make envoy`) over ADS and fails a case Envoy rejects,
// with Envoy's own message.
//
// For each case the suite parses listeners.yaml, routes.yaml, clusters.yaml
// and endpoints.yaml back into Envoy v3 protos, serves them from an
// in-process go-control-plane SotW ADS server (snapshot cache, one snapshot
// per case node), and starts one Envoy whose bootstrap points ADS at it.
// The verdict is Envoy's: no `*.update_rejected` or `*.init_fetch_timeout`
// counter above zero, no `listener_manager.listener_create_failure`, no
// SDS `update_failure`, no NACK on the stream, every resource present in
// /config_dump (so a resource Envoy silently ignored fails too) and active,
// not warming (so a listener or cluster waiting for a secret that never
// came fails), and the server LIVE (`server.state` 0).
//
// What the suite changes before sending, and why (Plan, plan.go):
//   - listeners that bind get a free port in place of theirs (15001, 15006,
//     gateway ports), so parallel Envoys do not collide: port numbers are not
//     what is validated;
//   - proxyless gRPC API listeners (api_listener) are not sent: Envoy's LDS
//     does not accept them, grpc-go is their verifier (make e2e-file). Their
//     HttpConnectionManager is sent instead in a synthetic bind_to_port=false
//     listener, so the route configs and HTTP filters still reach Envoy;
//   - a route config no listener references gets a synthetic listener that
//     references it, a ClusterLoadAssignment no EDS cluster names gets a
//     synthetic EDS cluster, because Envoy only asks for what is referenced;
//   - the SDS secrets clusters and listeners name ("default", "ROOTCA",
//     "kubernetes://...") are served as test certificates, over ADS and over
//     the bootstrap's sds-grpc cluster (which stands in for the agent's SDS);
//   - TLS certificate, key and CA files they name (a DestinationRule's
//     clientCertificate, privateKey, caCertificates: files mounted into the
//     pod) are test PEM files in a temporary directory: Envoy reads them on
//     load, and the pod's files do not exist here.
//
// Each change is logged per case ("plan: ..."). TestVerdictCatchesRejection
// proves the verdict fails on resources go-control-plane's ValidateAll
// accepts and Envoy rejects; TestVerdictCatchesWarming, on a case whose
// secrets never arrive.
//
// The suite runs inside the network namespace of hack/netns-run.sh (DNS
// clusters make Envoy resolve names; no packet may leave the machine): make
// e2e-envoy-golden starts it there, and a plain `go test` re-runs itself
// there.
package envoygolden
