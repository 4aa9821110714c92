package etcdtest_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/etcdtest"
)

// TestSignal: a SIGSTOPped etcd does not answer, a SIGCONTed one does; a
// killed one cannot be signalled.
func TestSignal(t *testing.T) {
	s := etcdtest.Start(t)
	cli := s.Client(t)
	get := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		_, err := cli.Get(ctx, "k")
		return err
	}
	require.NoError(t, get(5*time.Second))

	require.NoError(t, s.Signal(syscall.SIGSTOP))
	require.Error(t, get(500*time.Millisecond), "a paused etcd answered")
	require.NoError(t, s.Signal(syscall.SIGCONT))
	require.Eventually(t, func() bool { return get(time.Second) == nil }, 15*time.Second, 50*time.Millisecond)

	s.Kill()
	require.Error(t, s.Signal(syscall.SIGCONT))
}
