package xds

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"slices"
	"sync"
	"unicode/utf8"
	"unsafe"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// DiscoveryRequest's fields decoded here.
const (
	requestVersion = 1 // version_info
	requestNames   = 3 // resource_names
	requestTypeURL = 4 // type_url
	requestNonce   = 5 // response_nonce
)

// unmarshalRequest decodes a DiscoveryRequest. Its resource names are
// shared: a state-of-the-world EDS ACK from each of 2,000 proxies names the
// same 1,000 clusters. When the names are one contiguous run of bytes seen
// before (clients encode a list the same way every time), the shared list
// is found by those bytes alone; otherwise each name is looked up in the
// intern table straight from the wire bytes, so a name the table holds
// costs no allocation. An ACK's other fields (version, type, nonce) are
// decoded here too; a request with any other field (the node, a NACK's
// error, ...) has those decoded by protobuf.
func unmarshalRequest(b []byte, m *discovery.DiscoveryRequest) error {
	return unmarshalHinted(b, m, nil)
}

// requestHint is what a stream's previous requests named: the shared list
// (and its encoding) of the last one that named a long list. A state-of-
// the-world EDS ACK repeats the stream's list; with the hint it is
// recognised by one comparison of its bytes, not a walk over its names and
// a hash of them. It belongs to the stream's receiving goroutine.
type requestHint struct{ last *listEntry }

// hintedRequest is the message a stream receives into: the request, and
// its hint, updated by meshd's codec. Any other codec decodes the embedded
// request.
type hintedRequest struct {
	*discovery.DiscoveryRequest
	hint *requestHint
}

// unmarshalHinted is unmarshalRequest with the stream's hint (nil: none),
// which it updates.
func unmarshalHinted(b []byte, m *discovery.DiscoveryRequest, hint *requestHint) error {
	var last *listEntry
	if hint != nil {
		last = hint.last
	}
	s, err := scanRequest(b, last)
	if err != nil {
		return err
	}
	var names []string
	var used *listEntry
	switch {
	case s.hinted:
		used = last
	case s.run != nil:
		used = reqLists.byEncoding(s.run)
	}
	if used != nil {
		names = used.list
	}
	if names == nil && s.count > 0 {
		if names, err = lookupNames(b, requestNames, s.count); err != nil {
			return err
		}
		names = reqLists.intern(names)
		if s.run != nil {
			used = reqLists.rememberEncoding(s.run, names)
		}
	}
	if hint != nil && used != nil {
		hint.last = used
	}
	m.Reset()
	if s.other {
		if err := proto.Unmarshal(withoutFields(b, requestNames), m); err != nil {
			return err
		}
	} else {
		m.VersionInfo, m.TypeUrl, m.ResponseNonce = string(s.version), typeURLString(s.typeURL), string(s.nonce)
	}
	m.ResourceNames = names
	return nil
}

// typeURLString returns v as a string: a known type URL's constant when v
// is one (no allocation), a copy otherwise.
func typeURLString(v []byte) string {
	for _, t := range knownTypes {
		if string(v) == t {
			return t
		}
	}
	return string(v)
}

var errInvalidString = errors.New("proto: DiscoveryRequest: string field contains invalid UTF-8")

// scannedRequest is the top level of an encoded DiscoveryRequest.
type scannedRequest struct {
	// run is the names' bytes when they are one contiguous run of at least
	// minSharedList names; count is how many names there are.
	run   []byte
	count int
	// The last value of each field decoded by hand (nil: absent).
	version, typeURL, nonce []byte
	// other: the request has fields protobuf must decode.
	other bool
	// hinted: the names are exactly the hint's list (run is its encoding).
	hinted bool
}

// namesTag is the first byte of a resource_names field.
const namesTag = requestNames<<3 | byte(protowire.BytesType)

// scanRequest checks the top level of an encoded request and finds its
// fields. If the names start with hint's encoding (nil: no hint) and end
// with it, they are taken as one run without walking them.
func scanRequest(b []byte, hint *listEntry) (scannedRequest, error) {
	var s scannedRequest
	runStart, runEnd, contiguous := -1, -1, true
	for off := 0; off < len(b); {
		if runStart < 0 && hint != nil && b[off] == namesTag {
			if enc := hint.enc; len(enc) > 0 && bytes.HasPrefix(b[off:], enc) &&
				(off+len(enc) == len(b) || b[off+len(enc)] != namesTag) {
				runStart, runEnd = off, off+len(enc)
				s.count += len(hint.list)
				s.hinted = true
				off = runEnd
				continue
			}
		}
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return s, protowire.ParseError(n)
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[off+n:])
		if vn < 0 {
			return s, protowire.ParseError(vn)
		}
		switch {
		case typ != protowire.BytesType:
			s.other = true
		case num == requestNames:
			switch {
			case runStart < 0:
				runStart = off
			case off != runEnd:
				contiguous = false
			}
			runEnd = off + n + vn
			s.count++
		case num == requestVersion || num == requestTypeURL || num == requestNonce:
			v, _ := protowire.ConsumeBytes(b[off+n:])
			if !utf8.Valid(v) { // every occurrence, as protobuf checks them, not just the last
				return s, errInvalidString
			}
			switch num {
			case requestVersion:
				s.version = v
			case requestTypeURL:
				s.typeURL = v
			default:
				s.nonce = v
			}
		default:
			s.other = true
		}
		off += n + vn
	}
	if contiguous && s.count >= minSharedList {
		s.run = b[runStart:runEnd]
	}
	s.hinted = s.hinted && s.run != nil // not if more names followed elsewhere
	return s, nil
}

// lookupNames returns the count names (string fields numbered field) of
// a checked encoded request, each the intern table's copy (added when
// new).
func lookupNames(b []byte, field protowire.Number, count int) ([]string, error) {
	names := make([]string, 0, count)
	var (
		missing []int    // indexes into names of those the table lacks
		raw     [][]byte // their bytes
	)
	reqNames.mu.RLock()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		vn := protowire.ConsumeFieldValue(num, typ, b[n:])
		if num == field && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[n:])
			s, ok := reqNames.m[string(v)]
			if !ok {
				missing = append(missing, len(names))
				raw = append(raw, v)
			}
			names = append(names, s)
		}
		b = b[n+vn:]
	}
	reqNames.mu.RUnlock()
	for k, i := range missing {
		if !utf8.Valid(raw[k]) {
			return nil, errInvalidName
		}
		names[i] = reqNames.intern(string(raw[k]))
	}
	return names, nil
}

var errInvalidName = errors.New("proto: resource name or version: invalid UTF-8")

// reqNames interns request resource names: one copy of each however many
// streams hold it. The table is bounded: when full (a client sending
// endless distinct names) it starts afresh; names already handed out
// stay valid, they are just no longer shared with later requests.
var reqNames = &internTable{m: map[string]string{}}

// The table's bounds: well above any mesh's resource names. A name longer
// than maxInternedLen (no resource name is) is not interned at all.
const (
	maxInterned      = 1 << 18
	maxInternedBytes = 32 << 20
	maxInternedLen   = 1 << 10
)

type internTable struct {
	mu    sync.RWMutex
	m     map[string]string
	bytes int // held by the names in m
}

// intern returns the table's copy of s, adding s.
func (t *internTable) intern(s string) string {
	t.mu.RLock()
	c, ok := t.m[s]
	t.mu.RUnlock()
	if ok {
		return c
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.m[s]; ok {
		return c
	}
	if len(s) > maxInternedLen {
		return s
	}
	if len(t.m) >= maxInterned || t.bytes+len(s) > maxInternedBytes {
		t.m, t.bytes = map[string]string{}, 0
	}
	t.m[s] = s
	t.bytes += len(s)
	return s
}

// reqLists shares whole name lists, and their name sets: the proxies of
// one scope send the same state-of-the-world EDS request, and each stream
// keeps its last one (the list, and the set its subscription is). Lists
// are identified by their interned strings' addresses, so a list is
// recognised cheaply and only when its names came from reqNames. Bounded
// by the names the lists hold; when full it starts afresh.
var reqLists = newListTable()

const (
	minSharedList = 16       // shorter lists are not worth a lookup
	maxListNames  = 1 << 20  // names held by all shared lists together
	maxListBytes  = 32 << 20 // encodings held by the table together
)

type listTable struct {
	mu    sync.Mutex
	seed  maphash.Seed
	byKey map[uint64]*listEntry  // by a hash of the names' addresses
	byPtr map[*string]*listEntry // by the shared list's first element
	byEnc map[uint64]*listEntry  // by a hash of the list's encoding, once seen
	names int                    // held by the lists
	bytes int                    // held by the encodings
}

// listEntry is a shared list and, once asked for, its name set.
type listEntry struct {
	list     []string
	set      map[string]struct{}
	wildcard bool   // "*" is one of the names
	enc      []byte // the names as a request encoded them, once seen
}

func newListTable() *listTable {
	t := &listTable{seed: maphash.MakeSeed()}
	t.reset()
	return t
}

// reset empties the table. t.mu is held (or t is new).
func (t *listTable) reset() {
	t.byKey, t.byPtr, t.byEnc, t.names, t.bytes = map[uint64]*listEntry{}, map[*string]*listEntry{}, map[uint64]*listEntry{}, 0, 0
}

// byEncoding returns the shared list whose names a request encoded as enc,
// nil if none is known.
func (t *listTable) byEncoding(enc []byte) *listEntry {
	h := maphash.Bytes(t.seed, enc)
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byEnc[h]; ok && bytes.Equal(e.enc, enc) {
		return e
	}
	return nil
}

// rememberEncoding records that enc encodes the shared list l, and
// returns its entry (nil if the table does not keep it).
func (t *listTable) rememberEncoding(enc []byte, l []string) *listEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byPtr[unsafe.SliceData(l)]
	switch {
	case !ok || len(e.list) != len(l):
		return nil
	case e.enc != nil:
		return e // an encoding is known already (the same, or another of the same names)
	case t.bytes+len(enc) > maxListBytes:
		return nil
	}
	e.enc = bytes.Clone(enc)
	t.byEnc[maphash.Bytes(t.seed, enc)] = e
	t.bytes += len(enc)
	return e
}

// intern returns the shared list equal to l (l itself when new).
func (t *listTable) intern(l []string) []string {
	if len(l) < minSharedList {
		return l
	}
	var h maphash.Hash
	h.SetSeed(t.seed)
	var b [16]byte
	for _, s := range l {
		binary.LittleEndian.PutUint64(b[:8], uint64(uintptr(unsafe.Pointer(unsafe.StringData(s)))))
		binary.LittleEndian.PutUint64(b[8:], uint64(len(s)))
		_, _ = h.Write(b[:])
	}
	key := h.Sum64()
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byKey[key]; ok && slices.Equal(e.list, l) {
		return e.list
	}
	if t.names+len(l) > maxListNames {
		t.reset()
	}
	if old, ok := t.byKey[key]; ok {
		t.names -= len(old.list)
		delete(t.byPtr, unsafe.SliceData(old.list))
		if old.enc != nil {
			t.bytes -= len(old.enc)
			delete(t.byEnc, maphash.Bytes(t.seed, old.enc))
		}
	}
	e := &listEntry{list: slices.Clip(l)}
	t.byKey[key], t.byPtr[unsafe.SliceData(e.list)] = e, e
	t.names += len(l)
	return e.list
}

// set returns the set of names (without "*") and whether "*" is one: the
// shared set when names is a shared list (the entry keeps the list, so its
// address is not reused while the entry exists), else a new one.
func (t *listTable) set(names []string) (map[string]struct{}, bool) {
	if len(names) < minSharedList {
		return nameSet(names)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byPtr[unsafe.SliceData(names)]
	if !ok || len(e.list) != len(names) {
		return nameSet(names)
	}
	if e.set == nil {
		e.set, e.wildcard = nameSet(e.list)
	}
	return e.set, e.wildcard
}
