package etcdtest

import (
	"errors"
	"fmt"
	"os"
)

// Signal sends sig to the etcd process, for faults a test injects itself:
// SIGSTOP freezes etcd (clients' requests hang, as with a stalled disk or
// VM), SIGCONT resumes it. Kill and TryRestart are the lifecycle; Signal
// fails when no process is running.
func (s *Server) Signal(sig os.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("signal etcd: not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal etcd: %w", err)
	}
	return nil
}
