package transport

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/syncbuf"
)

// lines returns the log lines containing every one of subs.
// logBuf collects a site's JSON log lines.
type logBuf struct{ syncbuf.Buffer }

func (l *logBuf) lines(subs ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// freeAddr returns a loopback UDP address that was free a moment ago.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer c.Close()
	return c.LocalAddr().String()
}

// certDir generates certificates for sites into a temporary directory.
func certDir(tb testing.TB, sites ...string) string {
	tb.Helper()
	dir := tb.TempDir()
	require.NoError(tb, GenerateCerts(dir, sites))
	return dir
}

// siteConfig is the config of site name with certificates from dir.
func siteConfig(tb testing.TB, dir, name, listen string, peers []Peer) Config {
	tb.Helper()
	return Config{
		Site:     name,
		Listen:   listen,
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, name+".pem"),
		KeyFile:  filepath.Join(dir, name+"-key.pem"),
		Peers:    peers,
		StateDir: tb.TempDir(),
	}
}

type site struct {
	m      *Mesh
	cfg    Config
	logs   *logBuf
	cancel context.CancelFunc
	done   chan error
}

// newSite builds a Mesh (setup may adjust it before Run) and runs it until
// the test ends or stop is called.
func newSite(tb testing.TB, cfg Config, setup func(*Mesh)) *site {
	tb.Helper()
	s := &site{cfg: cfg, logs: &logBuf{}, done: make(chan error, 1)}
	log := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(cfg, log, nil)
	require.NoError(tb, err)
	s.m = m
	if setup != nil {
		setup(m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- m.Run(ctx) }()
	tb.Cleanup(func() {
		s.stop(tb)
		if tb.Failed() {
			tb.Logf("log of site %s:\n%s", cfg.Site, s.logs.String())
		}
	})
	return s
}

// stop ends Run and waits for it; idempotent.
func (s *site) stop(tb testing.TB) {
	tb.Helper()
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok {
			require.NoError(tb, err)
			close(s.done)
		}
	case <-time.After(30 * time.Second):
		tb.Fatalf("site %s: Run did not return", s.cfg.Site)
	}
}

// newCluster starts a full mesh of the named sites on loopback.
func newCluster(tb testing.TB, names []string, tweak func(*Config)) map[string]*site {
	tb.Helper()
	dir := certDir(tb, names...)
	addrs := map[string]string{}
	for _, n := range names {
		addrs[n] = freeAddr(tb)
	}
	sites := map[string]*site{}
	for _, n := range names {
		var peers []Peer
		for _, o := range names {
			if o != n {
				peers = append(peers, Peer{Name: o, Addr: addrs[o]})
			}
		}
		cfg := siteConfig(tb, dir, n, addrs[n], peers)
		if tweak != nil {
			tweak(&cfg)
		}
		sites[n] = newSite(tb, cfg, nil)
	}
	return sites
}

func connected(m *Mesh, peer string) bool {
	for _, p := range m.Peers() {
		if p.Name == peer {
			return p.Connected
		}
	}
	return false
}

// waitMesh waits until every site is connected to every one of its peers
// over exactly one connection (simultaneous dials resolved).
func waitMesh(tb testing.TB, sites map[string]*site, within time.Duration) {
	tb.Helper()
	require.Eventually(tb, func() bool {
		for _, s := range sites {
			for _, p := range s.m.peers {
				p.mu.Lock()
				n := len(p.conns)
				p.mu.Unlock()
				if n != 1 {
					return false
				}
			}
			if s.m.live.Load() != int64(len(s.m.peers)) {
				return false
			}
		}
		return true
	}, within, 10*time.Millisecond, "mesh not settled to one connection per pair")
}

// nextEvent waits for the next event of peer matching kind, skipping others.
func nextEvent(tb testing.TB, ch <-chan PeerEvent, peer string, kind EventKind, within time.Duration) PeerEvent {
	tb.Helper()
	t := time.NewTimer(within)
	defer t.Stop()
	for {
		select {
		case ev := <-ch:
			if ev.Peer == peer && ev.Kind == kind {
				return ev
			}
		case <-t.C:
			tb.Fatalf("no %s event for %s within %v", kind, peer, within)
		}
	}
}
