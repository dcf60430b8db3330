package model

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// KindJWKS is the kind of the JSON Web Key Sets meshd fetched for the
// jwksUri of RequestAuthentications (as istiod does by default,
// PILOT_JWT_ENABLE_REMOTE_JWKS=false). They are not Istio config: not in
// ConfigKinds; the Store holds one per source (namespace "", name
// JWKSName's).
const KindJWKS Kind = "JWKS"

// JWKS is the result of fetching one jwksUri: the key set as served, or
// the error of the last fetch when no key set was ever fetched. A JWKS is
// immutable.
type JWKS struct {
	// URI is the jwksUri (or the issuer whose OpenID discovery document
	// names it, when the rule has neither jwks nor jwksUri).
	URI string
	// Keys is the key set's JSON, "" when no fetch has succeeded yet.
	Keys string
	// Err is why the last fetch failed ("" when it succeeded). With Keys
	// set, Keys is the last good key set, still served.
	Err string
	// Fetched is when Keys was fetched.
	Fetched time.Time
}

// String describes the JWKS for logs.
func (j *JWKS) String() string {
	if j.Err != "" {
		return fmt.Sprintf("JWKS %s (error: %s)", j.URI, j.Err)
	}
	return fmt.Sprintf("JWKS %s (%d bytes, fetched %s)", j.URI, len(j.Keys), j.Fetched.UTC().Format(time.RFC3339))
}

// JWKSName is the Store name of the key set a JWT rule with jwksURI and
// issuer needs meshd to fetch: "uri:<jwksUri>", or "openid:<issuer>" when
// it has no jwksUri (the issuer's OpenID discovery document names it).
// Two namespaces of names, so a rule naming an issuer never stands for
// another rule's jwksUri.
func JWKSName(jwksURI, issuer string) string {
	if jwksURI != "" {
		return "uri:" + jwksURI
	}
	return "openid:" + issuer
}

// JWKS returns the key set stored under name (JWKSName), if the Snapshot
// holds one.
func (s *Snapshot) JWKS(name string) (*JWKS, bool) {
	o, ok := s.objects[KindJWKS]["/"+name]
	if !ok {
		return nil, false
	}
	return o.(*JWKS), true
}

// ParseJWKS checks that s is a JSON Web Key Set with at least one key,
// every key of which parses and is valid (Envoy refuses a listener whose
// jwt_authn holds a key set it cannot read); the error names the key.
func ParseJWKS(s string) error {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return fmt.Errorf("not a JSON Web Key Set: %v", err)
	}
	if len(raw.Keys) == 0 {
		return fmt.Errorf("the JSON Web Key Set has no keys")
	}
	for i, k := range raw.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(k); err != nil {
			return fmt.Errorf("keys[%d]: %v", i, err)
		}
		if !key.Valid() {
			return fmt.Errorf("keys[%d]: not a valid key", i)
		}
	}
	return nil
}
