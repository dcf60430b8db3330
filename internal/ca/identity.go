package ca

import (
	"fmt"
	"strings"
)

// Identity is an authenticated workload identity: the service account a
// caller's token belongs to, inside the mesh's trust domain.
type Identity struct {
	TrustDomain    string
	Namespace      string
	ServiceAccount string
}

// SPIFFEID returns the identity's SPIFFE URI as Istio spells it:
// spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>.
func (id Identity) SPIFFEID() string {
	return "spiffe://" + id.TrustDomain + "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount
}

// validate refuses identities with empty or path-breaking parts, so a SPIFFE
// URI can never name a different identity than the one authenticated.
func (id Identity) validate() error {
	parts := []struct{ name, value string }{
		{"trust domain", id.TrustDomain},
		{"namespace", id.Namespace},
		{"service account", id.ServiceAccount},
	}
	for _, p := range parts {
		if p.value == "" {
			return fmt.Errorf("identity has an empty %s", p.name)
		}
		if strings.ContainsAny(p.value, "/?#%@: ") {
			return fmt.Errorf("identity %s %q contains a character not allowed in a SPIFFE ID", p.name, p.value)
		}
	}
	return nil
}
