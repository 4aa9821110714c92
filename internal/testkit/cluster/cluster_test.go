package cluster_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/bench/link"
	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/syncbuf"
)

// get returns the status of GET url, or an error.
func get(client *http.Client, url string) (int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func requireStatus(tb testing.TB, url string, want int) {
	tb.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	require.Eventually(tb, func() bool {
		code, err := get(client, url)
		return err == nil && code == want
	}, 15*time.Second, 50*time.Millisecond, "GET %s: want %d", url, want)
}

func TestCluster(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	require.NotNil(t, c.Etcd())
	require.Len(t, c.Sites(), 3)
	require.Nil(t, c.Link("a", "b"), "no link without Options.Link")
	for _, s := range c.Sites() {
		require.True(t, s.Running(), s.Name)
		requireStatus(t, s.URL+"/healthz", http.StatusOK)
		requireStatus(t, s.URL+"/readyz", http.StatusOK) // refdb reachable
		require.Equal(t, s.URL+"/tango/core.git", s.GitURL("tango/core"))
		require.Equal(t, c.Etcd().Addr, c.RefdbEndpoint(s.Name))
	}
	require.Equal(t, c.Site("b").URL, c.PeerURL("a", "b"))
	require.Equal(t, c.Site("b").MeshAddr, c.PeerAddr("a", "b"))

	t.Run("kill and restart", func(t *testing.T) {
		b := c.Site("b")
		pid := b.Pid()
		require.NotZero(t, pid)
		require.NoError(t, b.Kill())
		require.False(t, b.Running())
		require.Zero(t, b.Pid())
		require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "serve %d still exists after Kill", pid)
		_, err := get(&http.Client{Timeout: time.Second}, b.URL+"/healthz")
		require.Error(t, err, "a killed site must not answer")

		require.NoError(t, b.Start())
		require.True(t, b.Running())
		requireStatus(t, b.URL+"/readyz", http.StatusOK)
		log := b.ReadLog()
		require.Equal(t, 2, strings.Count(log, cluster.StartMarker), log)
		// SIGKILL: the first process never got to shut down.
		first := log[:strings.LastIndex(log, cluster.StartMarker)]
		require.NotContains(t, first, "shutting down")
		require.Error(t, b.Start(), "a running site cannot start twice")
	})

	t.Run("stop", func(t *testing.T) {
		s := c.Site("c")
		require.NoError(t, s.Stop())
		require.False(t, s.Running())
		require.Contains(t, s.ReadLog(), "shutting down", "SIGTERM lets serve shut down")
		require.NoError(t, s.Stop(), "stopping a stopped site does nothing")
		require.NoError(t, s.Start())
	})

	t.Run("failed start", func(t *testing.T) {
		s := c.Site("c")
		mode := func(m string) func(map[string]any) {
			return func(cfg map[string]any) { cfg["replication"].(map[string]any)["mode"] = m }
		}
		require.NoError(t, s.EditConfig(mode("bogus")))
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		require.NoError(t, s.WaitLog(ctx, "config reload failed", 1), "the running serve keeps its config")
		require.NoError(t, s.Stop())
		err := s.Start()
		require.Error(t, err)
		require.ErrorContains(t, err, "replication.mode", "the error carries the log tail")
		require.False(t, s.Running())
		require.NoError(t, s.EditConfig(mode("quorum")))
		require.NoError(t, s.Start())
	})

	t.Run("edit config reloads", func(t *testing.T) {
		a := c.Site("a")
		require.Equal(t, "quorum", a.Config()["replication"].(map[string]any)["mode"])
		require.NoError(t, a.EditConfig(func(cfg map[string]any) {
			cfg["replication"].(map[string]any)["mode"] = "sync"
		}))
		require.Equal(t, "sync", a.Config()["replication"].(map[string]any)["mode"])
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		require.NoError(t, a.WaitLog(ctx, "config reloaded", 1))
		file, err := os.ReadFile(a.ConfigPath)
		require.NoError(t, err)
		require.Contains(t, string(file), `mode: "sync"`)
	})
}

// median of n GETs of url with client, in wall time.
func medianGet(tb testing.TB, client *http.Client, url string, n int) time.Duration {
	tb.Helper()
	var ds []time.Duration
	for range n {
		start := time.Now()
		code, err := get(client, url)
		require.NoError(tb, err)
		require.Equal(tb, http.StatusOK, code)
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[n/2]
}

func TestClusterLink(t *testing.T) {
	const delay = 20 * time.Millisecond
	c := cluster.Start(t, cluster.Options{Sites: 2, Link: &link.Profile{Delay: delay}})
	a, b := c.Site("a"), c.Site("b")
	for _, s := range c.Sites() {
		requireStatus(t, s.URL+"/readyz", http.StatusOK) // through its refdb relay
		require.NotEqual(t, c.Etcd().Addr, c.RefdbEndpoint(s.Name))
	}
	viaRelay := c.PeerURL("a", "b") + "/healthz"
	require.NotEqual(t, b.URL+"/healthz", viaRelay)
	require.NotEqual(t, b.MeshAddr, c.PeerAddr("a", "b"))
	require.NotEqual(t, a.MeshAddr, c.PeerAddr("b", "a"))
	require.Same(t, c.Link("a", "b"), c.Link("b", "a"))
	// What serve reads names the relays.
	for _, s := range c.Sites() {
		cfg, err := config.Load(s.ConfigPath)
		require.NoError(t, err)
		require.Equal(t, s.MeshAddr, cfg.Mesh.Listen)
		require.Equal(t, s.HTTPAddr, cfg.HTTP.Listen)
		require.Equal(t, []string{c.RefdbEndpoint(s.Name)}, cfg.RefDB.Endpoints)
		require.Len(t, cfg.Mesh.Peers, 1)
		p := cfg.Mesh.Peers[0]
		require.Equal(t, c.PeerAddr(s.Name, p.Name), p.Addr)
		require.Equal(t, c.PeerURL(s.Name, p.Name), p.URL)
	}
	require.NotNil(t, c.Link("a", cluster.EtcdName))

	t.Run("delay", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
		defer client.CloseIdleConnections()
		// A new connection pays the TCP handshake (one RTT) and the request
		// (another); a kept-alive one only the request.
		start := time.Now()
		code, err := get(client, viaRelay)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		require.GreaterOrEqual(t, time.Since(start), 4*delay-2*time.Millisecond)
		warm := medianGet(t, client, viaRelay, 5)
		require.GreaterOrEqual(t, warm, 2*delay-2*time.Millisecond, "RTT through the relay")
		require.Less(t, warm, 2*delay+50*time.Millisecond, "RTT through the relay")

		st := c.RelayStats("a", "b")
		require.NotZero(t, st.HTTP.AtoB.Bytes, "requests crossed the relay")
		require.NotZero(t, st.HTTP.BtoA.Bytes, "replies crossed the relay")
		require.Zero(t, c.RelayStats("b", "a").HTTP.AtoB.Bytes)
		require.NotZero(t, c.RelayStats("a", cluster.EtcdName).Refdb.AtoB.Bytes, "a's refdb traffic crosses its relay")

		direct := medianGet(t, client, b.URL+"/healthz", 5)
		require.Less(t, direct, 2*delay-2*time.Millisecond, "a direct request pays no delay")

		// A profile change at run time applies to new data.
		require.NoError(t, c.SetProfile("a", "b", link.Profile{Delay: 2 * delay}))
		require.Equal(t, 2*delay, c.Link("a", "b").Profile(link.AtoB).Delay)
		warm = medianGet(t, client, viaRelay, 3)
		require.GreaterOrEqual(t, warm, 3*delay-2*time.Millisecond)
		require.NoError(t, c.SetProfile("a", "b", link.Profile{Delay: delay}))
	})

	t.Run("partition", func(t *testing.T) {
		c.Partition("b", true)
		require.True(t, c.Link("a", "b").Partitioned())
		require.True(t, c.Link("b", cluster.EtcdName).Partitioned())
		require.False(t, c.Link("a", cluster.EtcdName).Partitioned())
		short := &http.Client{Transport: &http.Transport{}, Timeout: 300 * time.Millisecond}
		_, err := get(short, viaRelay)
		require.Error(t, err, "a partitioned peer must not answer")
		// b lost the refdb: /readyz (asked directly) fails; a keeps it.
		requireStatus(t, b.URL+"/readyz", http.StatusServiceUnavailable)
		requireStatus(t, a.URL+"/readyz", http.StatusOK)

		c.Partition("b", false)
		requireStatus(t, viaRelay, http.StatusOK)
		requireStatus(t, b.URL+"/readyz", http.StatusOK)
	})
}

// TestNew is the bench harness's use: no testing.TB, Close stops and
// removes everything.
func TestNew(t *testing.T) {
	var out syncbuf.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := cluster.New(ctx, cluster.Options{Sites: 1, Refdb: "none", Mode: "async", Log: &out,
		Env: func(site string) []string { return []string{"SITESYNC_TEST_ENV=" + site} },
		Config: func(site string, cfg map[string]any) {
			cfg["replication"].(map[string]any)["timeout"] = 3 * time.Second
		}})
	require.NoError(t, err)
	a := c.Site("a")
	require.Nil(t, c.Etcd())
	require.Empty(t, c.RefdbEndpoint("a"))
	requireStatus(t, a.URL+"/readyz", http.StatusOK)
	pid := a.Pid()
	file, err := os.ReadFile(a.ConfigPath)
	require.NoError(t, err)
	require.Contains(t, string(file), `timeout: "3s"`)
	requireEnv(t, pid, "SITESYNC_TEST_ENV=a", true)
	require.NoError(t, a.Stop())
	a.SetEnv("SITESYNC_TEST_ENV_2=x")
	require.NoError(t, a.Start())
	pid = a.Pid()
	requireEnv(t, pid, "SITESYNC_TEST_ENV=a", false)
	requireEnv(t, pid, "SITESYNC_TEST_ENV_2=x", true)

	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "idempotent")
	require.False(t, a.Running())
	require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH)
	_, err = os.Stat(c.Dir())
	require.ErrorIs(t, err, os.ErrNotExist, "Close removes the directory New made")
	require.Contains(t, out.String(), "a | "+cluster.StartMarker)
	require.Contains(t, out.String(), "a | ")
}

// requireEnv checks whether the environment of process pid holds kv.
func requireEnv(tb testing.TB, pid int, kv string, want bool) {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	require.NoError(tb, err, "the test reads the process environment from /proc (Linux)")
	require.Equal(tb, want, slices.Contains(strings.Split(string(b), "\x00"), kv), "environment of %d holds %q", pid, kv)
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		opts cluster.Options
		want string
	}{
		{"too many sites", cluster.Options{Sites: 27}, "27 sites"},
		{"unknown refdb", cluster.Options{Refdb: "zk"}, `refdb "zk"`},
		{"bad link", cluster.Options{Link: &link.Profile{Loss: 2}}, "bad link profile"},
		{"refdb none with peers", cluster.Options{Sites: 2, Refdb: "none"}, "cannot guard refs across sites"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := cluster.New(context.Background(), tt.opts)
			require.Nil(t, c)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
