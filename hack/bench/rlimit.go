package main

import (
	"fmt"
	"syscall"
)

// fdReserve is what the bench and meshd need besides the proxies'
// connections: the API clients, the admin port, log and profile files.
const fdReserve = 512

// raiseNoFile raises this process's soft RLIMIT_NOFILE to the hard limit
// (meshd, started by it, inherits it) and returns the limit now in force.
func raiseNoFile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
			return rl.Cur, fmt.Errorf("raising RLIMIT_NOFILE to %d: %w", rl.Max, err)
		}
	}
	return rl.Cur, nil
}

// fitStreams returns the streams per connection to use for proxies given
// perConn asked for and a file-descriptor limit (0: unknown), and why it
// had to be raised ("" if not): each connection is a descriptor in the
// load generator and another in meshd, each process limited alike.
func fitStreams(proxies, perConn int, limit uint64) (int, string) {
	perConn = max(perConn, 1)
	conns := (proxies + perConn - 1) / perConn
	if limit == 0 || uint64(conns)+fdReserve <= limit {
		return perConn, ""
	}
	room := int(limit) - fdReserve
	if room < 1 {
		room = 1
	}
	fit := (proxies + room - 1) / room
	return fit, fmt.Sprintf("%d proxies on %d connections would exceed the file-descriptor limit %d: %d streams per connection (%d connections)",
		proxies, conns, limit, fit, (proxies+fit-1)/fit)
}
