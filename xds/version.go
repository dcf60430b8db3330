package xds

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
)

var deterministic = proto.MarshalOptions{Deterministic: true}

// typeVersion returns the version of a sorted list of marshalled resources:
// a hash of their names and content hashes. Equal content gives equal
// versions on every replica and after every restart.
func typeVersion(names []string, ms []marshalled) string {
	h := sha256.New()
	for i, m := range ms {
		h.Write([]byte(names[i]))
		h.Write([]byte{0})
		h.Write([]byte(m.hash))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// contentVersion is typeVersion for resources not yet marshalled.
func contentVersion(names []string, items []types.Resource) (string, error) {
	ms := make([]marshalled, len(items))
	for i, r := range items {
		m, err := marshal(nil, "", r)
		if err != nil {
			return "", err
		}
		ms[i] = m
	}
	return typeVersion(names, ms), nil
}
