package xds

import "reflect"

// explicitWildcard is the resource name that subscribes to everything.
const explicitWildcard = "*"

// sotwSubscription is a state-of-the-world stream's subscription to one
// type, with go-control-plane's semantics (stream.Subscription): a first
// request without names is a (legacy) wildcard, which later requests
// without names keep; once names are sent, the subscription is exactly
// the last request's names, "*" meaning wildcard. Its name set is shared
// with every stream that sent the same list and must not be altered.
// Only the stream's loop changes it, while no watch holds it.
type sotwSubscription struct {
	wildcard bool
	legacy   bool // no name requested yet: an empty request stays wildcard
	names    map[string]struct{}
	returned map[string]string // what the last response left the client with
	// hash is subsHash of hashOf: kept while names is the same set (an ACK
	// sends the same list, and gets the same shared set).
	hash   uint64
	hashOf map[string]struct{}
}

// namesHash is subsHash for s, computed once per name set.
func (s *sotwSubscription) namesHash() uint64 {
	if s.wildcard {
		return 0
	}
	if s.hashOf == nil || reflect.ValueOf(s.hashOf).UnsafePointer() != reflect.ValueOf(s.names).UnsafePointer() {
		s.hash, s.hashOf = hashNames(s.names), s.names
	}
	return s.hash
}

// emptyNames is the name set of a request without names.
var emptyNames = map[string]struct{}{}

func newSotwSubscription(names []string) *sotwSubscription {
	s := &sotwSubscription{wildcard: len(names) == 0, legacy: true, names: emptyNames, returned: map[string]string{}}
	s.set(names)
	return s
}

// set applies a request's names.
func (s *sotwSubscription) set(names []string) {
	if s.legacy {
		if len(names) == 0 {
			return
		}
		s.legacy = false
	}
	set, wildcard := reqLists.set(names)
	if !wildcard {
		// What is no longer subscribed is forgotten, so subscribing to it
		// again gets it sent even if unchanged.
		for n := range s.returned {
			if _, ok := set[n]; !ok {
				delete(s.returned, n)
			}
		}
	}
	s.wildcard, s.names = wildcard, set
}

// ReturnedResources implements cachev3.Subscription.
func (s *sotwSubscription) ReturnedResources() map[string]string { return s.returned }

// SubscribedResources implements cachev3.Subscription.
func (s *sotwSubscription) SubscribedResources() map[string]struct{} { return s.names }

// IsWildcard implements cachev3.Subscription.
func (s *sotwSubscription) IsWildcard() bool { return s.wildcard }

// nameSet builds the set of names (without "*") and whether "*" is one.
func nameSet(names []string) (map[string]struct{}, bool) {
	set := make(map[string]struct{}, len(names))
	wildcard := false
	for _, n := range names {
		if n == explicitWildcard {
			wildcard = true
		} else {
			set[n] = struct{}{}
		}
	}
	return set, wildcard
}
