package xds

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
)

var deterministic = proto.MarshalOptions{Deterministic: true}

// contentVersion returns a version for a sorted list of resources: a hash of
// their names and deterministic bytes. Equal content gives equal versions on
// every replica and after every restart.
func contentVersion(names []string, items []types.Resource) (string, error) {
	h := sha256.New()
	for i, r := range items {
		b, err := deterministic.Marshal(r)
		if err != nil {
			return "", err
		}
		h.Write([]byte(names[i]))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
