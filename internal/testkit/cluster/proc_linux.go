package cluster

import "syscall"

// sysProcAttr puts serve in a process group of its own, so Kill takes its git
// children with it as a machine crash would, and has the kernel SIGKILL it
// when the thread that started it dies, so no serve outlives a crashed test
// binary. (Pdeathsig follows the starting OS thread, not the process; the Go
// runtime does not retire threads of goroutines that did not lock them.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
