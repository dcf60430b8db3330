package fleet

import (
	"slices"
	"time"
)

// Summary is the distribution of a set of durations.
type Summary struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

// Quantiles summarises ds (nearest-rank quantiles); the zero Summary if
// ds is empty.
func Quantiles(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Sorted(slices.Values(ds))
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Summary{N: len(s), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: s[len(s)-1]}
}
