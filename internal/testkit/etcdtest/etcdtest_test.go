package etcdtest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/sitesync/sitesync/internal/testkit/etcdtest"
)

// TestStartProcess is the use without testing.TB: data survives Kill and
// TryRestart, Close removes the temporary directory.
func TestStartProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := etcdtest.StartProcess(ctx, "")
	require.NoError(t, err)
	defer s.Close()
	require.True(t, s.Running())
	require.Equal(t, "http://"+s.Addr, s.Endpoint)

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Addr}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	_, err = cli.Put(ctx, "k", "v")
	require.NoError(t, err)

	s.Kill()
	require.False(t, s.Running())
	require.NoError(t, s.TryRestart())
	require.Eventually(t, func() bool {
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		r, err := cli.Get(gctx, "k")
		return err == nil && len(r.Kvs) == 1 && string(r.Kvs[0].Value) == "v"
	}, 15*time.Second, 50*time.Millisecond, "the value survives a restart")

	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "idempotent")
	require.False(t, s.Running())
	_, err = os.Stat(s.DataDir)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Error(t, s.TryRestart(), "no restart after Close")
}
