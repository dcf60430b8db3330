//go:build !linux

package testenv

import "syscall"

// sysProcAttr puts a child in its own process group so Stop can signal it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
