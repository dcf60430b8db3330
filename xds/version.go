package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
)

var deterministic = proto.MarshalOptions{Deterministic: true}

// contentVersion returns a version for a sorted list of resources: a hash of
// their names and deterministic bytes. Equal content gives equal versions on
// every replica and after every restart.
func contentVersion(names []string, items []types.Resource) (string, error) {
	return contentVersionWith(nil, names, items)
}

// contentVersionWith is contentVersion with the hash of each resource value
// remembered in hashes (when not nil): resources shared by many scopes'
// outputs are marshalled once per Index, not once per scope.
func contentVersionWith(hashes *sync.Map, names []string, items []types.Resource) (string, error) {
	h := sha256.New()
	for i, r := range items {
		rh, err := resourceHash(hashes, r)
		if err != nil {
			return "", err
		}
		h.Write([]byte(names[i]))
		h.Write([]byte{0})
		h.Write(rh[:])
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func resourceHash(hashes *sync.Map, r types.Resource) ([sha256.Size]byte, error) {
	if hashes != nil {
		if v, ok := hashes.Load(r); ok {
			return v.([sha256.Size]byte), nil
		}
	}
	b, err := deterministic.Marshal(r)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	sum := sha256.Sum256(b)
	if hashes != nil {
		hashes.Store(r, sum)
	}
	return sum, nil
}
