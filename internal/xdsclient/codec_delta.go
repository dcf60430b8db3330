package xdsclient

import (
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// deltaMessage is a DeltaDiscoveryResponse as the delta transport reads
// it: its resources straight into the client's own form, without a
// discovery.Resource and an Any per resource. The codec decodes it with
// unmarshalDeltaMessage, which accepts and rejects exactly what
// unmarshalDeltaResponse does (TestDeltaMessageAgrees).
type deltaMessage struct {
	typeURL, version, nonce string
	// res are the resources: their names, versions, type URLs and values
	// alias the decoded buffer.
	res []resource
	// removed are the removed names, interned.
	removed []string
}

// unmarshalDeltaMessage decodes b into m as unmarshalDeltaResponse
// decodes it into a DeltaDiscoveryResponse: the same fields, the same
// interning and aliasing, the same errors. The fields the client does not
// use (aliases, TTLs, cache control, metadata, control plane, resource
// errors, unknown fields) are checked, not kept.
func unmarshalDeltaMessage(b []byte, m *deltaMessage) error {
	*m = deltaMessage{res: make([]resource, 0, countField(b, deltaResources))}
	var scratch *discovery.DeltaDiscoveryResponse // what is decoded only to be checked
	check := func() *discovery.DeltaDiscoveryResponse {
		if scratch == nil {
			scratch = &discovery.DeltaDiscoveryResponse{}
		}
		return scratch
	}
	return eachField(b, nil, func(f wireField) (bool, error) {
		var err error
		switch f.num {
		case deltaSystemVersionInfo:
			m.version, err = f.interned()
		case deltaResources:
			m.res = append(m.res, resource{})
			err = unmarshalDeltaResource(f, &m.res[len(m.res)-1])
		case deltaTypeURL:
			m.typeURL, err = f.interned()
		case deltaNonce:
			m.nonce, err = f.str()
		case deltaRemovedResources:
			var s string
			s, err = f.interned()
			m.removed = append(m.removed, s)
		case deltaControlPlane:
			err = message(f, &check().ControlPlane)
		case deltaRemovedResourceNames:
			err = appendMessage(f, &check().RemovedResourceNames)
		case deltaResourceErrors:
			err = appendMessage(f, &check().ResourceErrors)
		default:
			return false, nil
		}
		return true, err
	})
}

// unmarshalDeltaResource decodes a delta Resource field into r, as
// unmarshalResourceField does into a discovery.Resource: a repeated Any
// merges (a later type URL or value replaces an earlier one).
func unmarshalDeltaResource(f wireField, r *resource) error {
	b, err := f.bytes()
	if err != nil {
		return err
	}
	var scratch *discovery.Resource // what is decoded only to be checked
	check := func() *discovery.Resource {
		if scratch == nil {
			scratch = &discovery.Resource{}
		}
		return scratch
	}
	return eachField(b, nil, func(f wireField) (bool, error) {
		var err error
		switch f.num {
		case resVersion:
			r.version, err = f.aliased()
		case resResource:
			r.body = true
			err = unmarshalDeltaAny(f, r)
		case resName:
			r.name, err = f.aliased()
		case resAliases:
			_, err = f.utf8()
		case resTTL:
			err = message(f, &check().Ttl)
		case resCacheControl:
			err = message(f, &check().CacheControl)
		case resResourceName:
			err = message(f, &check().ResourceName)
		case resMetadata:
			err = message(f, &check().Metadata)
		default:
			return false, nil
		}
		return true, err
	})
}

// unmarshalDeltaAny decodes a Resource's Any field into r's type URL and
// value, as unmarshalAnyField does: both alias the decoded buffer.
func unmarshalDeltaAny(f wireField, r *resource) error {
	b, err := f.bytes()
	if err != nil {
		return err
	}
	return eachField(b, nil, func(f wireField) (bool, error) {
		var err error
		switch f.num {
		case anyTypeURL:
			r.typeURL, err = f.aliased()
		case anyValue:
			r.value, err = f.bytes()
		default:
			return false, nil
		}
		return true, err
	})
}
