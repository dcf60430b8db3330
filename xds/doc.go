// Package xds serves meshd's config over ADS: state-of-the-world streams
// (sotw.go) and delta streams (delta.go) on meshd's own stream loops, both
// over meshd's caches (a shared cache of marshalled resources per scope,
// mesh-wide EDS) and a gRPC codec that sends shared bytes by reference
// (codec.go).
//
// A delta stream keeps, per type, what it subscribes to (wildcard: Envoy's
// LDS and CDS; by name: RDS, EDS, SDS, gRPC; changed on demand by later
// requests) and the content hash of each resource the client holds
// (deltasub.go; for a wildcard, just the publication it holds). When its
// scope publishes, endpoints change (deltaeds.go: a mesh-wide change log,
// so a stream looks only at the names changed) or its subscription
// changes, it sends the resources whose hash differs and removed_resources
// for those gone. A proxy reconnecting with initial_resource_versions —
// also to a restarted meshd or another replica — is sent nothing it holds.
// What was sent counts as held, so a NACKed resource is resent only when
// its content changes.
//
// Proxies are grouped by scope (model.Scope): caches are keyed by scope,
// not by node, so proxies that see the same config share one translation,
// one validated snapshot and one set of versions. Listeners, routes,
// clusters and SDS secrets (sds.go) are served per scope; a proxy is sent
// only its scope's, so a Secret reaches only proxies of its namespace.
// Versions are content hashes, so restarts and replicas agree and a
// reconnecting proxy receives nothing new. Every scope snapshot passes
// translate.Validate (ValidateAll and referential integrity) before it is
// served; a failing one is logged and counted, and the last good one stays.
//
// The stream tracker (tracker.go) records what each proxy was sent and
// acknowledged, detects NACKs, and keeps a state-of-the-world stream from
// being resent a rejected version in a loop.
//
// Streams may also ask for istiod's debug endpoints (type istio.io/debug,
// debugxds.go): answered from the admin handler to authenticated callers
// under istiod's rules, before the tracker sees the stream, so a debug
// client is never bound to a scope or sent config.
//
// WhatIf (whatif*.go) compares what the connected scopes are sent with what
// they would be sent if a change were applied, on Indexes of its own,
// without applying it (/debug/whatif, meshctl what-if).
package xds
