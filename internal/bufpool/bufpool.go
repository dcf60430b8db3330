// Package bufpool keeps byte buffers for reuse, by power-of-two size
// class, and hands them out without zeroing them: a buffer that a message
// is copied into whole needs none (grpc-go's default pool zeroes every
// buffer it hands out, a whole size class for each message).
package bufpool

import (
	"math/bits"
	"sync"
)

// Pool holds buffers from min to max bytes: class i holds min<<i bytes.
type Pool struct {
	min     int
	classes []sync.Pool
}

// New returns a Pool for requests of min to max bytes (min > 0).
func New(min, max int) *Pool {
	return &Pool{min: min, classes: make([]sync.Pool, bits.Len(uint((max-1)/min))+1)}
}

// class is the index of the smallest class of at least n bytes.
func (p *Pool) class(n int) int { return bits.Len(uint((n - 1) / p.min)) }

// Get returns a buffer of at least n bytes, its length its class's size
// and its contents garbage; nil when n is outside the pool's sizes.
func (p *Pool) Get(n int) *[]byte {
	if n < p.min {
		return nil
	}
	i := p.class(n)
	if i >= len(p.classes) {
		return nil
	}
	if b, ok := p.classes[i].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, p.min<<i)
	return &b
}

// Put returns a buffer from Get for reuse; nil, and buffers of other sizes,
// are ignored. Nothing may refer to its contents any more.
func (p *Pool) Put(b *[]byte) {
	if b == nil || cap(*b) < p.min {
		return
	}
	i := p.class(cap(*b))
	if i >= len(p.classes) || p.min<<i != cap(*b) {
		return
	}
	*b = (*b)[:cap(*b)]
	p.classes[i].Put(b)
}
