package xdsclient

import (
	"hash/maphash"
	"sync/atomic"
	"unique"
)

// A simulated fleet interns the same few thousand names and versions for
// every one of its thousands of clients, four million times in a connect
// storm of 2,000 proxies: unique.Make's lookup was a seventh of the load
// generator's CPU. internHandle first looks in a small table of handles
// indexed by a hash of the string (lock-free: a slot holds one handle,
// replaced whole), which also keeps those strings interned.

// internSlots is the size of the table (a power of two).
const internSlots = 1 << 16

var (
	internSeed  = maphash.MakeSeed()
	internTable [internSlots]atomic.Pointer[unique.Handle[string]]
)

// internHandle returns the handle of s's canonical copy (s may alias a
// buffer: a string new to unique is cloned).
func internHandle(s string) unique.Handle[string] {
	slot := &internTable[maphash.String(internSeed, s)&(internSlots-1)]
	if h := slot.Load(); h != nil && h.Value() == s {
		return *h
	}
	h := unique.Make(s)
	slot.Store(&h)
	return h
}
