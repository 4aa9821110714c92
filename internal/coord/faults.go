package coord

import (
	"os"
	"syscall"
)

// Crash points for tests of invariant 5 (DESIGN.md §4). Config.Fault names
// one; the process kills itself with SIGKILL when it gets there, exactly
// like a machine that loses power. Empty in production.
const (
	// FaultAfterRefDBCommit: the origin dies right after its refdb commit,
	// before it commits locally or tells any peer.
	FaultAfterRefDBCommit = "after-refdb-commit"
)

func (c *Coordinator) fault(point string) {
	if c.cfg.Fault == point {
		c.log.Warn("fault point reached: killing this process", "fault", point)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
