package harness

import (
	"bytes"
	"sync"
)

// logBuffer collects a child process's output (its Stdout and Stderr)
// safely for concurrent writes and reads.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Logs returns everything written so far.
func (l *logBuffer) Logs() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
