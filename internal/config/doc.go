// Package config holds every setting of `meshd serve` in one place: its
// flag, the environment variable that sets it (istiod's name where istiod
// has the knob, so an operator's tuning carries over), its default, its
// istiod counterpart and its meaning. Parse reads flags and environment into
// a validated Settings; an invalid value fails with a message naming the
// flag or variable. Usage prints the same table as help text.
//
// A flag wins over its environment variable, which wins over the default.
// The package does no I/O beyond what it is handed (arguments, a getenv
// function, a writer for Usage).
package config
