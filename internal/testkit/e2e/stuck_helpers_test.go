package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/transport"
)

// Helpers of the stuck-write tests (stuck_test.go): reading the refdb
// straight from etcd, the journals from the status API, posting to the
// write API, killing a git client, and speaking on the mesh as a site.

// refdbPrefix is the key prefix internal/testkit/cluster configures
// (refdb.prefix: /sitesync).
const refdbPrefix = "/sitesync"

// etcdClient is a client of the cluster's etcd, for reading the refdb
// directly (the test's own path, not a site's relay).
func etcdClient(tb testing.TB, c *cluster.Cluster) *clientv3.Client {
	tb.Helper()
	require.NotNil(tb, c.Etcd(), "the cluster has no etcd")
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{c.Etcd().Addr},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	require.NoError(tb, err)
	tb.Cleanup(func() { cli.Close() })
	return cli
}

// refdbRange is the key range of a project's records, as refdb/etcd stores
// them (refdb/internal/keys): prefix "/r/" project 0x00 0x01 ref. The
// project names of these tests hold no 0x00, which the layout escapes.
func refdbRange(project string) (start, end string) {
	base := refdbPrefix + "/r/" + project + "\x00"
	return base + "\x01", base + "\x02"
}

// rawRecord is one refdb key as etcd holds it.
type rawRecord struct {
	Value  string // the stored JSON
	ModRev int64
}

// refdbRaw reads every record of project straight from etcd: ref → the
// stored record and its revision. It sees records a site's own reader
// would refuse to decode (a ref name refdb.ValidateRef does not accept).
func refdbRaw(tb testing.TB, cli *clientv3.Client, project string) map[string]rawRecord {
	tb.Helper()
	start, end := refdbRange(project)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, start, clientv3.WithRange(end))
	require.NoError(tb, err, "read the refdb of %q from etcd", project)
	out := make(map[string]rawRecord, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), start)] = rawRecord{Value: string(kv.Value), ModRev: kv.ModRevision}
	}
	return out
}

// refdbRecord reads one ref's record straight from etcd; Version 0 when
// the refdb holds none.
func refdbRecord(tb testing.TB, cli *clientv3.Client, project, ref string) refdb.Record {
	tb.Helper()
	raw, ok := refdbRaw(tb, cli, project)[ref]
	if !ok {
		return refdb.Missing(ref)
	}
	rec, err := refdb.DecodeRecord(ref, []byte(raw.Value))
	require.NoError(tb, err)
	return rec
}

// refdbValues is what the refdb holds for project: every existing ref and
// its value (tombstones left out), the refs every site must converge to.
func refdbValues(tb testing.TB, cli *clientv3.Client, project string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	for ref, raw := range refdbRaw(tb, cli, project) {
		rec, err := refdb.DecodeRecord(ref, []byte(raw.Value))
		require.NoError(tb, err)
		if rec.Exists() {
			out[ref] = rec.Value
		}
	}
	return out
}

// siteStatus is the part of GET /api/v1/status these tests read.
type siteStatus struct {
	Queues struct {
		Outbound int `json:"outbound"`
		Prepared int `json:"prepared"`
	} `json:"queues"`
	Peers []struct {
		Name      string `json:"name"`
		Connected bool   `json:"connected"`
	} `json:"peers"`
	Lag struct {
		CaughtUp bool `json:"caught_up"`
	} `json:"lag"`
}

// status reads s's status API; an error while the site is down.
func status(s *cluster.Site) (siteStatus, error) {
	var st siteStatus
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(s.URL + "/api/v1/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /api/v1/status at %s: %s: %s", s.Name, resp.Status, b)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("status of %s: %w: %s", s.Name, err, b)
	}
	return st, nil
}

// mustStatus is status that fails the test on error.
func mustStatus(tb testing.TB, s *cluster.Site) siteStatus {
	tb.Helper()
	st, err := status(s)
	require.NoError(tb, err)
	return st
}

// connected reports whether s's status shows peer connected.
func (st siteStatus) connected(peer string) bool {
	for _, p := range st.Peers {
		if p.Name == peer {
			return p.Connected
		}
	}
	return false
}

// waitConnected waits until s's status shows each of peers connected.
func waitConnected(tb testing.TB, s *cluster.Site, peers ...string) {
	tb.Helper()
	for _, p := range peers {
		ok := poll(readyWait, func() bool {
			st, err := status(s)
			return err == nil && st.connected(p)
		})
		require.True(tb, ok, "site %s does not show %s connected within %v", s.Name, p, readyWait)
	}
}

// waitQueuesEmpty waits until every site's outbound and prepared journals
// are empty, and fails naming what is left.
func waitQueuesEmpty(tb testing.TB, limit time.Duration, sites ...*cluster.Site) {
	tb.Helper()
	for _, s := range sites {
		var st siteStatus
		var err error
		ok := poll(limit, func() bool {
			st, err = status(s)
			return err == nil && st.Queues.Outbound == 0 && st.Queues.Prepared == 0
		})
		require.True(tb, ok, "site %s: journals not empty within %v: outbound %d, prepared %d (err %v)\n--- its log since its last start ---\n%s",
			s.Name, limit, st.Queues.Outbound, st.Queues.Prepared, err, tail(sinceStart(s), 40))
	}
}

// logSince is s's log without request lines, from the first line stamped
// at or after since (slog's text time=…).
func logSince(s *cluster.Site, since time.Time) string {
	var b strings.Builder
	for _, line := range strings.Split(sinceStart(s), "\n") {
		if i := strings.Index(line, "time="); i >= 0 {
			f := strings.Fields(line[i+5:])
			if len(f) > 0 {
				if ts, err := time.Parse(time.RFC3339Nano, f[0]); err == nil && ts.Before(since) {
					continue
				}
			}
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// tail is the last n lines of log, each cut to 300 bytes.
func tail(log string, n int) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 300 {
			lines[i] = l[:300] + "…"
		}
	}
	return strings.Join(lines, "\n")
}

// apiUpdate is one update of the write API's body.
type apiUpdate struct {
	Ref string `json:"ref"`
	Old string `json:"old"`
	New string `json:"new"`
}

// postRefs sends POST /api/v1/projects/{name}/refs to s and returns the
// status and the body.
func postRefs(tb testing.TB, s *cluster.Site, name string, ups ...apiUpdate) (int, string) {
	tb.Helper()
	body, err := json.Marshal(map[string]any{"updates": ups})
	require.NoError(tb, err)
	u := s.URL + "/api/v1/projects/" + url.PathEscape(name) + "/refs"
	resp, err := httpClient.Post(u, "application/json", bytes.NewReader(body))
	require.NoError(tb, err, "POST %s", u)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// lockFiles lists the *.lock files under the repository at dir.
func lockFiles(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil // something moved under us
		}
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".lock") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// packCount is the number of packs in the repository at dir.
func packCount(dir string) int {
	m, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	return len(m)
}

// gitClient is a git command started in a process group of its own, so
// that a test can SIGKILL it with every helper it started (git push runs
// git-remote-http), as a user killing the client does.
type gitClient struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
	err  error
}

// startGit starts git with args in dir.
func startGit(tb testing.TB, env *gittest.GitEnv, dir string, args ...string) *gitClient {
	tb.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = env.Vars()
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(tb, cmd.Start())
	g := &gitClient{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		g.err = cmd.Wait()
		close(g.done)
	}()
	tb.Cleanup(func() {
		g.kill()
		<-g.done
	})
	return g
}

// kill SIGKILLs the client's process group.
func (g *gitClient) kill() { _ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL) }

// exited reports whether the client has exited.
func (g *gitClient) exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// wait waits for the client's exit and returns its output and error.
func (g *gitClient) wait() (string, error) {
	<-g.done
	return g.out.String(), g.err
}

// meshAs starts a transport mesh endpoint with site's identity (its
// certificate and key, signed by the cluster's CA, and its instance id)
// on site's mesh address, peered with the given sites at the addresses
// site's own configuration names for them. site's serve must be stopped
// first (its port and its name are taken). stop stops the mesh (and waits
// for it); the test's cleanup calls it too.
func meshAs(tb testing.TB, c *cluster.Cluster, site string, peers ...string) (m *transport.Mesh, stop func()) {
	tb.Helper()
	s := c.Site(site)
	require.False(tb, s.Running(), "site %s must be stopped before the test speaks as it", site)
	certs := filepath.Join(c.Dir(), "certs")
	state := tb.TempDir()
	if id, err := os.ReadFile(filepath.Join(s.State, "instance-id")); err == nil {
		require.NoError(tb, os.WriteFile(filepath.Join(state, "instance-id"), id, 0o644))
	}
	var ps []transport.Peer
	for _, p := range peers {
		ps = append(ps, transport.Peer{Name: p, Addr: c.PeerAddr(site, p)})
	}
	var err error
	m, err = transport.New(transport.Config{
		Site: site, Listen: s.MeshAddr,
		CAFile: filepath.Join(certs, "ca.pem"), CertFile: filepath.Join(certs, site+".pem"), KeyFile: filepath.Join(certs, site+"-key.pem"),
		Peers: ps, StateDir: state,
	}, slog.New(slog.DiscardHandler), nil)
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	tb.Cleanup(stop)
	for _, p := range peers {
		ok := poll(30*time.Second, func() bool {
			for _, st := range m.Peers() {
				if st.Name == p && st.Connected {
					return true
				}
			}
			return false
		})
		require.True(tb, ok, "the mesh speaking as %s did not connect to %s", site, p)
	}
	return m, stop
}
