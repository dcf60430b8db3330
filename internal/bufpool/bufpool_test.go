package bufpool

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSizeClasses: a buffer of the next power-of-two class, none outside
// the pool's sizes, and only the pool's own sizes taken back.
func TestSizeClasses(t *testing.T) {
	const min, max = 64 << 10, 16 << 20
	p := New(min, max)
	for _, n := range []int{min, min + 1, 2 * min, 336 << 10, max} {
		b := p.Get(n)
		require.NotNil(t, b, "size %d", n)
		require.GreaterOrEqual(t, len(*b), n)
		require.Less(t, len(*b), 2*n, "size %d: the class is the next power of two", n)
		p.Put(b)
	}
	require.Nil(t, p.Get(min-1))
	require.Nil(t, p.Get(max+1))

	// A buffer of another size is not taken: Get never returns one
	// smaller than its class.
	odd := make([]byte, 3*min)
	p.Put(&odd)
	for range 10 {
		b := p.Get(4 * min)
		require.Equal(t, 4*min, len(*b))
	}
	// A buffer put back resliced is whole again when it comes out.
	b := p.Get(min)
	*b = (*b)[:10]
	p.Put(b)
	require.Equal(t, min, len(*p.Get(min)))
}
