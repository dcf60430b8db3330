package ca

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// tokenKey is the cache key of a token: its SHA-256, so the cache never
// holds a usable credential.
type tokenKey [sha256.Size]byte

// cacheEntry is one positive authentication result.
type cacheEntry struct {
	key     tokenKey
	id      Identity
	expires time.Time
}

// authnCache is a small LRU of positive authentication results, bounded in
// size, whose entries expire at their own deadline. It is safe for
// concurrent use.
type authnCache struct {
	mu      sync.Mutex
	size    int
	order   *list.List // front = most recently used; values are *cacheEntry
	entries map[tokenKey]*list.Element
}

// newAuthnCache returns a cache holding at most size entries.
func newAuthnCache(size int) *authnCache {
	return &authnCache{size: size, order: list.New(), entries: map[tokenKey]*list.Element{}}
}

// hashToken returns the cache key of token.
func hashToken(token string) tokenKey { return sha256.Sum256([]byte(token)) }

// get returns the identity cached for k if its entry has not expired at now.
// An expired entry is removed.
func (c *authnCache) get(k tokenKey, now time.Time) (Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		return Identity{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.remove(el)
		return Identity{}, false
	}
	c.order.MoveToFront(el)
	return e.id, true
}

// add caches id for k until expires, evicting the least recently used entry
// when the cache is full.
func (c *authnCache) add(k tokenKey, id Identity, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		e := el.Value.(*cacheEntry)
		e.id, e.expires = id, expires
		c.order.MoveToFront(el)
		return
	}
	for c.order.Len() >= c.size {
		c.remove(c.order.Back())
	}
	c.entries[k] = c.order.PushFront(&cacheEntry{key: k, id: id, expires: expires})
}

// len returns the number of entries, expired or not.
func (c *authnCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// remove drops el; the caller holds mu.
func (c *authnCache) remove(el *list.Element) {
	c.order.Remove(el)
	delete(c.entries, el.Value.(*cacheEntry).key)
}
