package main

import (
	"os"
	"runtime/debug"
)

// loadgenGCPercent is the load generator's GOGC unless its environment
// sets one. The simulated proxies stand for Envoys, which run elsewhere
// and collect no garbage; the load generator's heap (~850 MB at 2,000
// proxies) grows from nothing in a connect storm, and at Go's default
// each doubling costs a collection of everything live on the two cores
// meshd is measured on. At 400 the heap may grow to five times what is
// live (the machine has 24 GB) and a storm takes about half the
// collections. meshd's own GOGC is untouched: it runs in its own process,
// with its own environment.
const loadgenGCPercent = 400

// tuneLoadgenGC sets loadgenGCPercent unless GOGC is set.
func tuneLoadgenGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(loadgenGCPercent)
	}
}
