package testenv

import "syscall"

// sysProcAttr puts a child in its own process group (so Stop can signal it
// and anything it spawns) and has the kernel kill it if the test binary dies
// without calling Stop.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
