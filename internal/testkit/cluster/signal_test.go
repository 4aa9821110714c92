package cluster_test

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
)

// TestSignal: SIGSTOP freezes a site (its front door stops answering),
// SIGCONT brings it back; a stopped site cannot be signalled.
func TestSignal(t *testing.T) {
	c := cluster.Start(t, cluster.Options{Sites: 1, Refdb: "none"})
	a := c.Site("a")
	requireStatus(t, a.URL+"/healthz", http.StatusOK)

	require.NoError(t, a.Signal(syscall.SIGSTOP))
	_, err := get(&http.Client{Timeout: 500 * time.Millisecond}, a.URL+"/healthz")
	require.Error(t, err, "a paused site answered")
	require.True(t, a.Running(), "a paused site is still running")

	require.NoError(t, a.Signal(syscall.SIGCONT))
	requireStatus(t, a.URL+"/healthz", http.StatusOK)

	require.NoError(t, a.Kill())
	require.Error(t, a.Signal(syscall.SIGCONT))
}
