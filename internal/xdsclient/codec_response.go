package xdsclient

import (
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// Field numbers of the messages the codec decodes itself
// (envoy/service/discovery/v3/discovery.proto, google/protobuf/any.proto).
const (
	respVersionInfo    = 1 // DiscoveryResponse: string version_info
	respResources      = 2 // repeated Any resources
	respCanary         = 3 // bool canary
	respTypeURL        = 4 // string type_url
	respNonce          = 5 // string nonce
	respControlPlane   = 6 // ControlPlane control_plane
	respResourceErrors = 7 // repeated ResourceError resource_errors

	deltaSystemVersionInfo    = 1 // DeltaDiscoveryResponse: string system_version_info
	deltaResources            = 2 // repeated Resource resources
	deltaTypeURL              = 4 // string type_url
	deltaNonce                = 5 // string nonce
	deltaRemovedResources     = 6 // repeated string removed_resources
	deltaControlPlane         = 7 // ControlPlane control_plane
	deltaRemovedResourceNames = 8 // repeated ResourceName removed_resource_names
	deltaResourceErrors       = 9 // repeated ResourceError resource_errors

	resVersion      = 1 // Resource: string version
	resResource     = 2 // Any resource
	resName         = 3 // string name
	resAliases      = 4 // repeated string aliases
	resTTL          = 6 // Duration ttl
	resCacheControl = 7 // CacheControl cache_control
	resResourceName = 8 // ResourceName resource_name
	resMetadata     = 9 // Metadata metadata

	anyTypeURL = 1 // Any: string type_url
	anyValue   = 2 // bytes value
)

// unmarshalResponse decodes b into m (reset first). m keeps b: each Any's
// value and type URL alias it. The response's type URL and version are
// interned and its nonce copied (they outlive the response), the rarely
// set nested messages decoded by proto.Unmarshal.
func unmarshalResponse(b []byte, m *discovery.DiscoveryResponse) error {
	m.Reset()
	n := countField(b, respResources)
	m.Resources = make([]*anypb.Any, 0, n)
	anys := slab[anypb.Any]{make([]anypb.Any, n)}
	return eachField(b, m, func(f wireField) (bool, error) {
		var err error
		switch f.num {
		case respVersionInfo:
			m.VersionInfo, err = f.interned()
		case respResources:
			a := anys.next()
			err = unmarshalAnyField(f, a)
			m.Resources = append(m.Resources, a)
		case respCanary:
			m.Canary, err = f.bool()
		case respTypeURL:
			m.TypeUrl, err = f.interned()
		case respNonce:
			m.Nonce, err = f.str()
		case respControlPlane:
			err = message(f, &m.ControlPlane)
		case respResourceErrors:
			err = appendMessage(f, &m.ResourceErrors)
		default:
			return false, nil
		}
		return true, err
	})
}

// unmarshalDeltaResponse decodes b into m (reset first), as
// unmarshalResponse does. The strings of each Resource (name, version,
// aliases) alias b, so a reader that keeps a name interns it (decode
// does); the removed names are interned.
func unmarshalDeltaResponse(b []byte, m *discovery.DeltaDiscoveryResponse) error {
	m.Reset()
	n := countField(b, deltaResources)
	m.Resources = make([]*discovery.Resource, 0, n)
	res := slab[discovery.Resource]{make([]discovery.Resource, n)}
	anys := slab[anypb.Any]{make([]anypb.Any, n)}
	return eachField(b, m, func(f wireField) (bool, error) {
		var err error
		switch f.num {
		case deltaSystemVersionInfo:
			m.SystemVersionInfo, err = f.interned()
		case deltaResources:
			r := res.next()
			err = unmarshalResourceField(f, r, &anys)
			m.Resources = append(m.Resources, r)
		case deltaTypeURL:
			m.TypeUrl, err = f.interned()
		case deltaNonce:
			m.Nonce, err = f.str()
		case deltaRemovedResources:
			var s string
			s, err = f.interned()
			m.RemovedResources = append(m.RemovedResources, s)
		case deltaControlPlane:
			err = message(f, &m.ControlPlane)
		case deltaRemovedResourceNames:
			err = appendMessage(f, &m.RemovedResourceNames)
		case deltaResourceErrors:
			err = appendMessage(f, &m.ResourceErrors)
		default:
			return false, nil
		}
		return true, err
	})
}

// unmarshalResourceField decodes a delta Resource field into r, taking its
// Any from anys.
func unmarshalResourceField(f wireField, r *discovery.Resource, anys *slab[anypb.Any]) error {
	b, err := f.bytes()
	if err != nil {
		return err
	}
	return eachField(b, r, func(f wireField) (bool, error) {
		var err error
		switch f.num {
		case resVersion:
			r.Version, err = f.aliased()
		case resResource:
			if r.Resource == nil { // else merge, as protobuf does
				r.Resource = anys.next()
			}
			err = unmarshalAnyField(f, r.Resource)
		case resName:
			r.Name, err = f.aliased()
		case resAliases:
			var s string
			s, err = f.aliased()
			r.Aliases = append(r.Aliases, s)
		case resTTL:
			err = message(f, &r.Ttl)
		case resCacheControl:
			err = message(f, &r.CacheControl)
		case resResourceName:
			err = message(f, &r.ResourceName)
		case resMetadata:
			err = message(f, &r.Metadata)
		default:
			return false, nil
		}
		return true, err
	})
}

// unmarshalAnyField decodes an Any field into a: its type URL and value
// alias the decoded buffer.
func unmarshalAnyField(f wireField, a *anypb.Any) error {
	b, err := f.bytes()
	if err != nil {
		return err
	}
	return eachField(b, a, func(f wireField) (bool, error) {
		var err error
		switch f.num {
		case anyTypeURL:
			a.TypeUrl, err = f.aliased()
		case anyValue:
			a.Value, err = f.bytes()
		default:
			return false, nil
		}
		return true, err
	})
}
