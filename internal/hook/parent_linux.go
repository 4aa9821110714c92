package hook

import (
	"os"
	"syscall"
)

// dieWithParent has the kernel send this process SIGTERM when the git that
// ran it dies (PR_SET_PDEATHSIG), so that a hook waiting on the daemon ends
// with a git that was stopped or killed, and the daemon sees the request go
// away. It reports false if git is already gone.
func dieWithParent() bool {
	ppid := os.Getppid()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0); errno != 0 {
		return true // not fatal: the hook only outlives its git
	}
	return os.Getppid() == ppid
}
