package fleet

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// rawResponse is what the fleet reads of a DiscoveryResponse or
// DeltaDiscoveryResponse straight from its encoding, without decoding the
// resources: enough to ACK it, count it and (delta) know the versions of
// the resources it carries.
type rawResponse struct {
	typeURL, version, nonce string
	// resources counts the resources; named are delta resources' names
	// and versions (state of the world: none).
	resources int
	named     []namedVersion
	removed   []string
	bytes     int
}

// namedVersion is a delta resource's name and version.
type namedVersion struct{ name, version string }

// Field numbers shared by DiscoveryResponse and DeltaDiscoveryResponse
// (version_info / system_version_info 1, resources 2, type_url 4, nonce
// 5); removed_resources 6 is delta's. A delta Resource has version 1 and
// name 3.
const (
	fieldVersion   = 1
	fieldResources = 2
	fieldTypeURL   = 4
	fieldNonce     = 5
	fieldRemoved   = 6
	resVersion     = 1
	resName        = 3
)

// parseResponse reads a response's encoding b; nothing it returns aliases
// b (usually a buffer gRPC reuses).
func parseResponse(b []byte, delta bool) (rawResponse, error) {
	r := rawResponse{bytes: len(b)}
	err := eachBytesField(b, func(num protowire.Number, v []byte) error {
		switch num {
		case fieldVersion:
			r.version = string(v)
		case fieldTypeURL:
			r.typeURL = string(v)
		case fieldNonce:
			r.nonce = string(v)
		case fieldResources:
			r.resources++
			if delta {
				var nv namedVersion
				if err := eachBytesField(v, func(n protowire.Number, s []byte) error {
					switch n {
					case resVersion:
						nv.version = intern(s)
					case resName:
						nv.name = intern(s)
					}
					return nil
				}); err != nil {
					return err
				}
				r.named = append(r.named, nv)
			}
		case fieldRemoved:
			if delta {
				r.removed = append(r.removed, intern(v))
			}
		}
		return nil
	})
	return r, err
}

// eachBytesField calls fn for every length-delimited field of message b,
// skipping the others.
func eachBytesField(b []byte, fn func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("fleet: bad tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("fleet: bad field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("fleet: bad field %d: %w", num, protowire.ParseError(n))
		}
		if err := fn(num, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
