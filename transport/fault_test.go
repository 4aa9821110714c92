package transport

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// relay forwards UDP datagrams between clients and one target, all on
// loopback; drop makes it a partition (everything is dropped both ways).
type relay struct {
	ln     *net.UDPConn
	target *net.UDPAddr
	drop   atomic.Bool
	loss   atomic.Uint32 // per-mille of datagrams dropped at random, each way
	mu     sync.Mutex
	up     map[string]*net.UDPConn // client address → socket towards the target
	wg     sync.WaitGroup
}

func newRelay(tb testing.TB, target string) *relay {
	tb.Helper()
	ta, err := net.ResolveUDPAddr("udp", target)
	require.NoError(tb, err)
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(tb, err)
	r := &relay{ln: ln, target: ta, up: map[string]*net.UDPConn{}}
	r.wg.Go(r.loop)
	tb.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for _, c := range r.up {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *relay) addr() string { return r.ln.LocalAddr().String() }

func (r *relay) dropped() bool {
	return r.drop.Load() || rand.Uint32N(1000) < r.loss.Load()
}

func (r *relay) loop() {
	buf := make([]byte, 65536)
	for {
		n, from, err := r.ln.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if r.dropped() {
			continue
		}
		r.mu.Lock()
		up := r.up[from.String()]
		if up == nil {
			up, err = net.DialUDP("udp", nil, r.target)
			if err != nil {
				r.mu.Unlock()
				continue
			}
			r.up[from.String()] = up
			r.wg.Go(func() { r.back(up, from) })
		}
		r.mu.Unlock()
		_, _ = up.Write(buf[:n])
	}
}

func (r *relay) back(up *net.UDPConn, client *net.UDPAddr) {
	buf := make([]byte, 65536)
	for {
		n, err := up.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP port unreachable while the target restarts
		}
		if r.dropped() {
			continue
		}
		_, _ = r.ln.WriteToUDP(buf[:n], client)
	}
}

// TestPartitionAndRestart drives the link through a relay: a partition is
// detected on both sides within the idle timeout, healing reconnects within
// 2 s, and a restarted peer is reported as restarted (same instance id after
// a process restart, a new one after its state was replaced).
func TestPartitionAndRestart(t *testing.T) {
	dir := certDir(t, "a", "b")
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	toB, toA := newRelay(t, bAddr), newRelay(t, aAddr)
	const idle = 1500 * time.Millisecond
	tweak := func(c *Config) {
		c.IdleTimeout = idle
		c.KeepAlive = 300 * time.Millisecond
		c.DialTimeout = time.Second
		c.BackoffMin = 50 * time.Millisecond
		c.BackoffMax = 500 * time.Millisecond
	}
	aCfg := siteConfig(t, dir, "a", aAddr, []Peer{{Name: "b", Addr: toB.addr()}})
	bCfg := siteConfig(t, dir, "b", bAddr, []Peer{{Name: "a", Addr: toA.addr()}})
	tweak(&aCfg)
	tweak(&bCfg)
	var aEv, bEv <-chan PeerEvent
	a := newSite(t, aCfg, func(m *Mesh) {
		var cancel func()
		aEv, cancel = m.Subscribe()
		t.Cleanup(cancel)
	})
	b := newSite(t, bCfg, func(m *Mesh) {
		var cancel func()
		bEv, cancel = m.Subscribe()
		t.Cleanup(cancel)
	})
	nextEvent(t, aEv, "b", EventUp, 10*time.Second)
	nextEvent(t, bEv, "a", EventUp, 10*time.Second)
	oldB := b.m.InstanceID()

	// Partition: both sides declare the other down within the idle timeout.
	slack := 250 * time.Millisecond // timer and scheduling latency on 2 busy cores
	if raceEnabled {
		slack = 500 * time.Millisecond
	}
	toB.drop.Store(true)
	toA.drop.Store(true)
	cut := time.Now()
	var wg sync.WaitGroup
	for _, c := range []struct {
		ch   <-chan PeerEvent
		peer string
	}{{aEv, "b"}, {bEv, "a"}} {
		wg.Go(func() {
			ev := nextEvent(t, c.ch, c.peer, EventDown, idle+slack)
			t.Logf("%s reported down after %v: %v", c.peer, ev.At.Sub(cut).Round(time.Millisecond), ev.Err)
			assert.LessOrEqual(t, ev.At.Sub(cut), idle+slack)
		})
	}
	wg.Wait()
	assert.False(t, connected(a.m, "b"))
	assert.False(t, connected(b.m, "a"))

	// Heal: reconnected within 2 s, same peer process (no restart event).
	toB.drop.Store(false)
	toA.drop.Store(false)
	healed := time.Now()
	evA := nextEvent(t, aEv, "b", EventUp, 2*time.Second)
	evB := nextEvent(t, bEv, "a", EventUp, 2*time.Second)
	t.Logf("reconnected after %v / %v", evA.At.Sub(healed).Round(time.Millisecond), evB.At.Sub(healed).Round(time.Millisecond))
	assert.Equal(t, oldB, evA.Instance)

	// Process restart with the same state dir: restarted, same instance id.
	b.stop(t)
	nextEvent(t, aEv, "b", EventDown, 5*time.Second)
	b = newSite(t, bCfg, nil)
	ev := nextEvent(t, aEv, "b", EventRestarted, 5*time.Second)
	assert.Equal(t, oldB, ev.Instance)
	assert.False(t, ev.NewInstance)

	// Restart with a fresh state dir: restarted with a new instance id.
	b.stop(t)
	nextEvent(t, aEv, "b", EventDown, 5*time.Second)
	bCfg.StateDir = t.TempDir()
	b = newSite(t, bCfg, nil)
	ev = nextEvent(t, aEv, "b", EventRestarted, 5*time.Second)
	assert.True(t, ev.NewInstance)
	assert.Equal(t, oldB, ev.PrevInstance)
	assert.Equal(t, b.m.InstanceID(), ev.Instance)
	assert.NotEqual(t, uuid.Nil, ev.Instance)

	// Crash: b vanishes without closing its connection (the relay drops its
	// goodbye), and a new process comes back before a's idle timeout. Its
	// connection replaces the stale one at once.
	toA.drop.Store(true)
	toB.drop.Store(true)
	b.stop(t)
	toA.drop.Store(false)
	toB.drop.Store(false)
	assert.True(t, connected(a.m, "b"), "a should not have noticed the crash yet")
	crashed := time.Now()
	b = newSite(t, bCfg, nil)
	ev = nextEvent(t, aEv, "b", EventRestarted, idle)
	t.Logf("restart after a crash seen after %v (idle timeout %v)", time.Since(crashed).Round(time.Millisecond), idle)
	assert.False(t, ev.NewInstance)
	require.Eventually(t, func() bool { return a.m.live.Load() == 1 }, 5*time.Second, 10*time.Millisecond, "stale connection left")

	var st PeerState
	for _, p := range a.m.Peers() {
		st = p
	}
	assert.True(t, st.Connected)
	assert.Equal(t, b.m.InstanceID(), st.Instance)
}

// TestLossyLink: with 3% of datagrams lost each way, a bulk stream still
// arrives intact and concurrent requests all complete.
func TestLossyLink(t *testing.T) {
	dir := certDir(t, "a", "b")
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	toB, toA := newRelay(t, bAddr), newRelay(t, aAddr)
	toB.loss.Store(30)
	toA.loss.Store(30)
	a := newSite(t, siteConfig(t, dir, "a", aAddr, []Peer{{Name: "b", Addr: toB.addr()}}), nil)
	b := newSite(t, siteConfig(t, dir, "b", bAddr, []Peer{{Name: "a", Addr: toA.addr()}}), nil)
	b.m.Handle(kindEcho, func(ctx context.Context, from string, p []byte) ([]byte, error) { return p, nil })
	b.m.HandleStream(kindBulk, func(ctx context.Context, from string, hdr []byte, body io.Reader) ([]byte, error) {
		h := sha256.New()
		_, err := io.Copy(h, body)
		return h.Sum(nil), err
	})
	waitMesh(t, map[string]*site{"a": a, "b": b}, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const size = 16 << 20
	want := sha256.New()
	s, err := a.m.OpenStream(ctx, "b", kindBulk, nil)
	require.NoError(t, err)
	var g errgroup.Group
	for i := range 100 {
		g.Go(func() error {
			p := fmt.Appendf(nil, "req-%d", i)
			got, err := a.m.Request(ctx, "b", kindEcho, p)
			if err == nil && string(got) != string(p) {
				err = fmt.Errorf("reply %q to %q", got, p)
			}
			return err
		})
	}
	_, err = io.Copy(io.MultiWriter(s, want), newPattern(2, size))
	require.NoError(t, err)
	got, err := s.CloseAndWait(ctx)
	require.NoError(t, err)
	require.NoError(t, g.Wait())
	assert.Equal(t, want.Sum(nil), got, "stream corrupted over a lossy link")
}
