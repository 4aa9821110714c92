package link

import (
	"context"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPipeAdmit(t *testing.T) {
	ms := time.Millisecond
	type step struct {
		at      time.Duration // arrival, from t0
		n       int
		lossy   bool
		release time.Duration // from t0
		backlog time.Duration
		v       verdict
	}
	tests := []struct {
		name  string
		prof  Profile
		steps []step
	}{
		{
			name: "delay only",
			prof: Profile{Delay: 50 * ms},
			steps: []step{
				{at: 0, n: 1500, lossy: true, release: 50 * ms},
				{at: 0, n: 1500, lossy: true, release: 50 * ms},
				{at: 7 * ms, n: 1, release: 57 * ms},
			},
		},
		{
			name: "bandwidth serializes back to back",
			prof: Profile{Delay: 10 * ms, Bandwidth: 1000}, // 1 byte per ms
			steps: []step{
				{at: 0, n: 20, lossy: true, release: 30 * ms, backlog: 20 * ms},
				{at: 0, n: 20, lossy: true, release: 50 * ms, backlog: 40 * ms},
				// The serializer went idle at 40 ms; a later arrival starts afresh.
				{at: 100 * ms, n: 5, lossy: true, release: 115 * ms, backlog: 5 * ms},
			},
		},
		{
			name: "full queue drops datagrams, not streams",
			prof: Profile{Bandwidth: 1000},
			steps: []step{
				{at: 0, n: 60, lossy: true, release: 60 * ms, backlog: 60 * ms},
				// 60 ms queued > QueueTime: drop-tail.
				{at: 0, n: 1, lossy: true, backlog: 60 * ms, v: dropQueue},
				// Once the queue drains below QueueTime it is accepted.
				{at: 11 * ms, n: 1, lossy: true, release: 61 * ms, backlog: 50 * ms},
				// A stream is always admitted and told its backlog.
				{at: 11 * ms, n: 100, release: 161 * ms, backlog: 150 * ms},
			},
		},
		{
			name: "no loss for streams",
			prof: Profile{Loss: 0.999999},
			steps: []step{
				{at: 0, n: 10, release: 0},
				{at: 0, n: 10, lossy: true, v: dropLoss},
			},
		},
	}
	t0 := time.Unix(1e9, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &pipe{prof: tt.prof, rng: rand.New(rand.NewPCG(1, 2))}
			for i, s := range tt.steps {
				rel, backlog, v := p.admit(t0.Add(s.at), s.n, s.lossy)
				require.Equal(t, s.v, v, "step %d verdict", i)
				require.Equal(t, s.backlog, backlog, "step %d backlog", i)
				if v == pass {
					require.Equal(t, s.release, rel.Sub(t0), "step %d release", i)
				}
			}
		})
	}
}

func TestPipeJitterKeepsOrder(t *testing.T) {
	const delay, jitter = 20 * time.Millisecond, 5 * time.Millisecond
	p := &pipe{prof: Profile{Delay: delay, Jitter: jitter}, rng: rand.New(rand.NewPCG(3, 4))}
	t0 := time.Unix(1e9, 0)
	var last time.Time
	lo, hi := time.Hour, time.Duration(0)
	for i := range 10000 {
		now := t0.Add(time.Duration(i) * time.Millisecond) // sparser than the jitter
		if i%2 == 1 {
			now = now.Add(-time.Millisecond + time.Microsecond) // a close pair
		}
		rel, _, v := p.admit(now, 100, true)
		require.Equal(t, pass, v)
		require.False(t, rel.Before(last), "packet %d overtook its predecessor", i)
		last = rel
		d := rel.Sub(now)
		lo, hi = min(lo, d), max(hi, d)
		require.GreaterOrEqual(t, d, delay-jitter)
	}
	// Jitter is really applied, over its whole range.
	require.Less(t, lo, delay-jitter+time.Millisecond)
	require.Greater(t, hi, delay+jitter-time.Millisecond)
}

func TestLinkSetProfile(t *testing.T) {
	l := newLink(t, Profile{}, Profile{})
	require.NoError(t, l.SetProfile(BtoA, Profile{Delay: time.Second}))
	require.Equal(t, Profile{Delay: time.Second}, l.Profile(BtoA))
	require.Equal(t, Profile{}, l.Profile(AtoB))
	for _, bad := range []Profile{{Delay: -1}, {Loss: 1}, {Loss: -0.1}, {Bandwidth: -5}, {Jitter: time.Hour}} {
		err := l.SetProfile(AtoB, bad)
		require.ErrorIs(t, err, ErrBadProfile, "%+v", bad)
	}
	require.Error(t, l.SetProfile(Dir(7), Profile{}))
	_, err := NewLink(Profile{Loss: 2}, Profile{})
	require.ErrorIs(t, err, ErrBadProfile)
}

func TestRelayRefusesNonLoopback(t *testing.T) {
	tests := []struct {
		name           string
		listen, target string
	}{
		{name: "listen on all addresses", listen: "0.0.0.0:0", target: "127.0.0.1:1"},
		{name: "target elsewhere", listen: "127.0.0.1:0", target: "10.0.0.1:443"},
		{name: "ipv6 loopback", listen: "[::1]:0", target: "127.0.0.1:1"},
		{name: "host name", listen: "127.0.0.1:0", target: "localhost:80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Listen: tt.listen, Target: tt.target}
			_, err := ListenUDP(cfg)
			require.Error(t, err)
			_, err2 := ListenTCP(cfg)
			require.Error(t, err2)
			if tt.name != "host name" {
				require.ErrorIs(t, err, ErrNotLoopback)
				require.ErrorIs(t, err2, ErrNotLoopback)
			}
		})
	}
}

func TestRelayLifecycle(t *testing.T) {
	echo := udpEcho(t)
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			newRelay := func() Relay {
				cfg := Config{Listen: "127.0.0.1:0", Target: echo}
				var r Relay
				var err error
				if proto == "udp" {
					r, err = ListenUDP(cfg)
				} else {
					r, err = ListenTCP(cfg)
				}
				require.NoError(t, err)
				return r
			}
			// Close before Run: Run refuses to start.
			r := newRelay()
			require.NoError(t, r.Close())
			require.NoError(t, r.Close())
			require.ErrorIs(t, r.Run(context.Background()), net.ErrClosed)

			// Close while running returns after Run has returned.
			r = newRelay()
			done := make(chan error, 1)
			go func() { done <- r.Run(context.Background()) }()
			// Run is serving once it has taken a client.
			c, err := net.Dial(proto+"4", r.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write([]byte("x"))
			require.NoError(t, err)
			waitFor(t, "relay running", eventually, func() bool { return r.Stats().Accepted == 1 })
			require.NoError(t, r.Close())
			select {
			case err := <-done:
				require.NoError(t, err)
			default:
				t.Fatal("Close returned before Run")
			}
			require.NoError(t, r.Close())
			require.ErrorIs(t, r.Run(context.Background()), net.ErrClosed)
		})
	}
}

// TestSharedLink runs a site pair's relays in both directions on one Link:
// each direction's profile and the partition apply whichever side opened the
// connection.
func TestSharedLink(t *testing.T) {
	l := newLink(t, Profile{Delay: 5 * time.Millisecond}, Profile{Delay: 15 * time.Millisecond})
	echoB, echoA := tcpEcho(t), tcpEcho(t)
	toB := tcpRelay(t, echoB, l) // clients at a
	r, err := ListenTCP(Config{Listen: "127.0.0.1:0", Target: echoA, Link: l, Reverse: true})
	require.NoError(t, err)
	serve(t, r) // clients at b
	for _, addr := range []string{toB.Addr().String(), r.Addr().String()} {
		requireRTT(t, 20*time.Millisecond, func() []time.Duration { return tcpRTT(t, addr) })
	}
	// Only the a→b direction slows down: both relays see it.
	require.NoError(t, l.SetProfile(AtoB, Profile{Delay: 25 * time.Millisecond}))
	for _, addr := range []string{toB.Addr().String(), r.Addr().String()} {
		requireRTT(t, 40*time.Millisecond, func() []time.Duration { return tcpRTT(t, addr) })
	}
	// One way for a relay's clients is the other way for the reverse relay.
	require.Positive(t, toB.Stats().AtoB.Bytes)
	require.Equal(t, toB.Stats().AtoB.Bytes, r.Stats().AtoB.Bytes)
}

func TestPipeAdmitBusy(t *testing.T) {
	ms := time.Millisecond
	t0 := time.Unix(1e9, 0)
	p := &pipe{prof: Profile{Delay: 10 * ms, Bandwidth: 1000}, rng: rand.New(rand.NewPCG(1, 2))}
	rel, backlog, _ := p.admit(t0, 20, false)
	require.Equal(t, 30*ms, rel.Sub(t0))
	require.Equal(t, 20*ms, backlog)
	// The reader ran 100 ms late, but its source was full: the serializer
	// carried on from 20 ms, and the data is due at once.
	rel, backlog = p.admitBusy(t0.Add(100*ms), 20)
	require.Equal(t, 50*ms, rel.Sub(t0))
	require.Equal(t, -60*ms, backlog)
	// A source that was not full idles the serializer until its next read.
	rel, _, _ = p.admit(t0.Add(200*ms), 20, false)
	require.Equal(t, 230*ms, rel.Sub(t0))
}
