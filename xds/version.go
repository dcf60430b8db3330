package xds

import (
	"crypto/sha256"
	"encoding/hex"

	"google.golang.org/protobuf/proto"
)

var deterministic = proto.MarshalOptions{Deterministic: true}

// typeVersion returns the version of a sorted list of marshalled resources:
// a hash of their names and content hashes. Equal content gives equal
// versions on every replica and after every restart.
func typeVersion(names []string, ms []marshalled) string {
	if len(ms) == 0 {
		return emptyVersion // most scopes have no secrets: no hash per push
	}
	h := sha256.New()
	for i, m := range ms {
		h.Write([]byte(names[i]))
		h.Write([]byte{0})
		h.Write([]byte(m.hash))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// emptyVersion is typeVersion of no resources.
var emptyVersion = func() string {
	sum := sha256.Sum256(nil)
	return hex.EncodeToString(sum[:])[:16]
}()
