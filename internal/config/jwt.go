package config

import (
	"fmt"
	"strings"
	"time"
)

// JWT are the settings of the JWKS resolver (internal/jwks): how meshd
// fetches the key sets of RequestAuthentications' jwksUri, as istiod's
// default PILOT_JWT_ENABLE_REMOTE_JWKS=false does.
type JWT struct {
	// RemoteJWKS (PILOT_JWT_ENABLE_REMOTE_JWKS) says who fetches jwksUri:
	// meshd supports istiod's default only ("false" or "istiod": the
	// control plane fetches and inlines the keys).
	RemoteJWKS string
	// RefreshInterval (PILOT_JWT_PUB_KEY_REFRESH_INTERVAL) is how often a
	// key set is fetched again.
	RefreshInterval time.Duration
	// CABundle is a PEM file of more CAs to verify https jwksUris with,
	// besides the system's (istiod's /cacerts/extra.pem); a missing file
	// adds none.
	CABundle string
	// InsecureSkipVerify (JWKS_RESOLVER_INSECURE_SKIP_VERIFY) fetches over
	// https without checking the server's certificate.
	InsecureSkipVerify bool
}

// defaultJWT returns the JWT defaults (istiod's).
func defaultJWT() JWT {
	return JWT{RemoteJWKS: "false", RefreshInterval: 20 * time.Minute, CABundle: "/cacerts/extra.pem"}
}

// jwtOptions are the JWKS resolver's settings, bound to j.
func jwtOptions(j *JWT) []option {
	return []option{
		{flag: "jwt-remote-jwks", arg: "MODE", env: "PILOT_JWT_ENABLE_REMOTE_JWKS", value: stringValue{p: &j.RemoteJWKS},
			usage: "who fetches RequestAuthentication jwksUris: false or istiod (meshd fetches them and hands the keys " +
				"to Envoy inline); Envoy-side fetching (true, hybrid, envoy) is not supported", istiod: "PILOT_JWT_ENABLE_REMOTE_JWKS, same default"},
		{flag: "jwt-pub-key-refresh-interval", arg: "DURATION", env: "PILOT_JWT_PUB_KEY_REFRESH_INTERVAL",
			value:  durationValue{p: &j.RefreshInterval},
			usage:  "how often each jwksUri is fetched again (a failed fetch is retried within a minute)",
			istiod: "PILOT_JWT_PUB_KEY_REFRESH_INTERVAL, same default"},
		{flag: "jwks-ca-bundle", arg: "FILE", value: stringValue{p: &j.CABundle},
			usage:  "PEM file of more CAs trusted for https jwksUris besides the system's; ignored when missing",
			istiod: "/cacerts/extra.pem"},
		{flag: "jwks-insecure-skip-verify", env: "JWKS_RESOLVER_INSECURE_SKIP_VERIFY", value: boolValue{p: &j.InsecureSkipVerify},
			usage: "fetch https jwksUris without verifying the server's certificate", istiod: "JWKS_RESOLVER_INSECURE_SKIP_VERIFY, same default"},
	}
}

// check refuses fetch modes meshd does not have.
func (j JWT) check() error {
	switch strings.ToLower(j.RemoteJWKS) {
	case "false", "istiod":
	default:
		return fmt.Errorf("PILOT_JWT_ENABLE_REMOTE_JWKS=%q: only false or istiod is supported (meshd fetches "+
			"jwksUris itself and hands Envoy the keys inline)", j.RemoteJWKS)
	}
	if j.RefreshInterval <= 0 {
		return fmt.Errorf("--jwt-pub-key-refresh-interval %s: want a positive duration", j.RefreshInterval)
	}
	return nil
}
