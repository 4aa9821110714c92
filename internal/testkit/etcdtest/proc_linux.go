package etcdtest

import "syscall"

// sysProcAttr makes the kernel kill etcd if the thread that started it dies,
// so a crashed test binary leaves no etcd behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
