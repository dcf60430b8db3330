package xds

import (
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

// requestNames is DiscoveryRequest.resource_names.
const requestNames = 3

// unmarshalRequest decodes a DiscoveryRequest. Its resource names are
// looked up in the intern table straight from the wire bytes, so a name
// the table holds costs no allocation: a state-of-the-world EDS ACK from
// each of 2,000 proxies names the same 1,000 clusters. The other fields
// are decoded by protobuf.
func unmarshalRequest(b []byte, m *discovery.DiscoveryRequest) error {
	var (
		rest    []byte   // every field but the names, for protobuf
		found   []string // the names; "" where missing says
		missing []int    // indexes into found of names the table lacks
		raw     [][]byte // their bytes
	)
	reqNames.mu.RLock()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			reqNames.mu.RUnlock()
			return protowire.ParseError(n)
		}
		if num == requestNames && typ == protowire.BytesType {
			v, vn := protowire.ConsumeBytes(b[n:])
			if vn < 0 {
				reqNames.mu.RUnlock()
				return protowire.ParseError(vn)
			}
			s, ok := reqNames.m[string(v)]
			if !ok {
				missing = append(missing, len(found))
				raw = append(raw, v)
			}
			found = append(found, s)
			b = b[n+vn:]
			continue
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[n:])
		if vn < 0 {
			reqNames.mu.RUnlock()
			return protowire.ParseError(vn)
		}
		rest = append(rest, b[:n+vn]...)
		b = b[n+vn:]
	}
	reqNames.mu.RUnlock()
	for k, i := range missing {
		if !utf8.Valid(raw[k]) {
			return errInvalidName
		}
		found[i] = reqNames.intern(string(raw[k]))
	}
	m.Reset()
	if err := proto.Unmarshal(rest, m); err != nil {
		return err
	}
	m.ResourceNames = reqLists.intern(found)
	return nil
}

var errInvalidName = errors.New("proto: resource_names: invalid UTF-8")

// reqNames interns request resource names: one copy of each however many
// streams hold it. The table is bounded: when full (a client sending
// endless distinct names) it starts afresh; names already handed out
// stay valid, they are just no longer shared with later requests.
var reqNames = &internTable{m: map[string]string{}}

// maxInterned is well above any mesh's resource names.
const maxInterned = 1 << 18

type internTable struct {
	mu sync.RWMutex
	m  map[string]string
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
	if len(t.m) >= maxInterned {
		t.m = map[string]string{}
	}
	t.m[s] = s
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
	minSharedList = 16      // shorter lists are not worth a lookup
	maxListNames  = 1 << 20 // names held by all shared lists together
)

type listTable struct {
	mu    sync.Mutex
	seed  maphash.Seed
	byKey map[uint64]*listEntry  // by a hash of the names' addresses
	byPtr map[*string]*listEntry // by the shared list's first element
	names int
}

// listEntry is a shared list and, once asked for, its name set.
type listEntry struct {
	list     []string
	set      map[string]struct{}
	wildcard bool // "*" is one of the names
}

func newListTable() *listTable {
	return &listTable{seed: maphash.MakeSeed(), byKey: map[uint64]*listEntry{}, byPtr: map[*string]*listEntry{}}
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
		t.byKey, t.byPtr, t.names = map[uint64]*listEntry{}, map[*string]*listEntry{}, 0
	}
	if old, ok := t.byKey[key]; ok {
		t.names -= len(old.list)
		delete(t.byPtr, unsafe.SliceData(old.list))
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
