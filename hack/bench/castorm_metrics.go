package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The CA storm's readings of other processes: the API server's counters
// and the test environment's process ids.

// apiCounter sums the API server's counter name over the series whose
// labels contain every filter.
func (s *stormer) apiCounter(name string, filter ...string) float64 {
	resp, err := s.env.HTTPClient().Get(s.env.URL + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return promSum(b.Bytes(), name, filter...)
}

// promSum sums the samples of metric name in Prometheus text whose labels
// contain every filter.
func promSum(text []byte, name string, filter ...string) float64 {
	var sum float64
next:
	for _, line := range strings.Split(string(text), "\n") {
		series, v, ok := strings.Cut(line, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		for _, f := range filter {
			if !strings.Contains(series, f) {
				continue next
			}
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			sum += f
		}
	}
	return sum
}

// childPID is the pid of this process's child named comm (0 if none):
// the test environment's kube-apiserver and etcd.
func childPID(comm string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if err != nil || open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(stat[end+1:]))
		if string(stat[open+1:end]) == comm && len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			return pid
		}
	}
	return 0
}
