package cluster

import (
	"fmt"
	"syscall"
)

// Signal sends sig to the site's serve process group (serve and any git
// child), for faults a test injects itself: SIGSTOP freezes the site as a
// stalled VM would, SIGCONT resumes it. Kill, Stop and Start are the
// lifecycle; Signal does not wait for anything. It fails when the site is
// not running.
func (s *Site) Signal(sig syscall.Signal) error {
	pid := s.Pid()
	if pid == 0 {
		return fmt.Errorf("signal site %q: not running", s.Name)
	}
	// The group's id is serve's pid (Setpgid); it cannot be reused while
	// serve, its leader, has not been reaped.
	if err := syscall.Kill(-pid, sig); err != nil {
		return fmt.Errorf("signal site %q: %w", s.Name, err)
	}
	return nil
}
