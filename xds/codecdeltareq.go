package xds

import (
	"unicode/utf8"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// DeltaDiscoveryRequest's fields decoded by hand, and the fields of an
// initial_resource_versions map entry.
const (
	deltaSubscribe   = 3 // resource_names_subscribe
	deltaUnsubscribe = 4 // resource_names_unsubscribe
	deltaInitial     = 5 // initial_resource_versions
	mapKey           = 1
	mapValue         = 2
)

// unmarshalDeltaRequest decodes a DeltaDiscoveryRequest. A delta stream's
// first EDS request names every cluster the proxy watches, and one that
// reconnects presents every resource it holds with its version: 2,000
// proxies send the same thousands of names and versions. Those are looked
// up in the intern table straight from the wire bytes (no allocation for
// a name it holds) and a subscription list is shared (reqLists) with the
// streams that sent the same; protobuf decodes the other fields. A map
// entry with anything but a key and a value (which protobuf allows, and
// no client sends) has the whole request decoded by protobuf, then
// interned.
func unmarshalDeltaRequest(b []byte, m *discovery.DeltaDiscoveryRequest) error {
	var subs, unsubs, initial int
	other := false
	for off := 0; off < len(b); {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return protowire.ParseError(n)
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[off+n:])
		if vn < 0 {
			return protowire.ParseError(vn)
		}
		switch {
		case typ == protowire.BytesType && num == deltaSubscribe:
			subs++
		case typ == protowire.BytesType && num == deltaUnsubscribe:
			unsubs++
		case typ == protowire.BytesType && num == deltaInitial:
			v, _ := protowire.ConsumeBytes(b[off+n:])
			if !plainEntry(v) {
				return unmarshalDeltaSlow(b, m)
			}
			initial++
		default:
			other = true
		}
		off += n + vn
	}
	if other {
		if err := proto.Unmarshal(withoutFields(b, deltaSubscribe, deltaUnsubscribe, deltaInitial), m); err != nil {
			return err
		}
	} else {
		m.Reset()
	}
	var err error
	if subs > 0 {
		if m.ResourceNamesSubscribe, err = lookupNames(b, deltaSubscribe, subs); err != nil {
			return err
		}
		m.ResourceNamesSubscribe = reqLists.intern(m.ResourceNamesSubscribe)
	}
	if unsubs > 0 {
		if m.ResourceNamesUnsubscribe, err = lookupNames(b, deltaUnsubscribe, unsubs); err != nil {
			return err
		}
	}
	if initial > 0 {
		m.InitialResourceVersions, err = lookupVersions(b, initial)
	}
	return err
}

// plainEntry reports whether a map entry's encoding is at most a key and
// a value, both strings.
func plainEntry(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType || (num != mapKey && num != mapValue) {
			return false
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[n:])
		if vn < 0 {
			return false
		}
		b = b[n+vn:]
	}
	return true
}

// lookupVersions returns the count initial_resource_versions entries of a
// checked encoded request, keys and values the intern table's copies. As
// protobuf, a key or value absent is empty and a later entry for a key
// replaces an earlier one.
func lookupVersions(b []byte, count int) (map[string]string, error) {
	out := make(map[string]string, count)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		vn := protowire.ConsumeFieldValue(num, typ, b[n:])
		if num == deltaInitial && typ == protowire.BytesType {
			entry, _ := protowire.ConsumeBytes(b[n:])
			var key, value []byte
			for len(entry) > 0 {
				f, _, en := protowire.ConsumeTag(entry)
				v, vl := protowire.ConsumeBytes(entry[en:])
				if f == mapKey {
					key = v
				} else {
					value = v
				}
				entry = entry[en+vl:]
			}
			k, err := internBytes(key)
			if err != nil {
				return nil, err
			}
			v, err := internBytes(value)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		b = b[n+vn:]
	}
	return out, nil
}

// internBytes returns the intern table's copy of v (added when new).
func internBytes(v []byte) (string, error) {
	reqNames.mu.RLock()
	s, ok := reqNames.m[string(v)]
	reqNames.mu.RUnlock()
	if ok {
		return s, nil
	}
	if !utf8.Valid(v) {
		return "", errInvalidName
	}
	return reqNames.intern(string(v)), nil
}

// unmarshalDeltaSlow decodes a request with protobuf, then interns its
// names and versions.
func unmarshalDeltaSlow(b []byte, m *discovery.DeltaDiscoveryRequest) error {
	if err := proto.Unmarshal(b, m); err != nil {
		return err
	}
	internAll(m.ResourceNamesSubscribe)
	internAll(m.ResourceNamesUnsubscribe)
	if len(m.InitialResourceVersions) > 0 {
		versions := make(map[string]string, len(m.InitialResourceVersions))
		for k, v := range m.InitialResourceVersions {
			versions[reqNames.intern(k)] = reqNames.intern(v)
		}
		m.InitialResourceVersions = versions
	}
	return nil
}

// withoutFields returns a checked encoding's fields but those numbered
// skip.
func withoutFields(b []byte, skip ...protowire.Number) []byte {
	var rest []byte
	for off := 0; off < len(b); {
		num, typ, n := protowire.ConsumeTag(b[off:])
		vn := protowire.ConsumeFieldValue(num, typ, b[off+n:])
		keep := true
		for _, s := range skip {
			keep = keep && !(num == s && typ == protowire.BytesType)
		}
		if keep {
			rest = append(rest, b[off:off+n+vn]...)
		}
		off += n + vn
	}
	return rest
}
