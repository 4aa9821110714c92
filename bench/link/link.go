package link

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// QueueTime is how much traffic, counted in time at the direction's bandwidth,
// the serializer queue of a direction holds before UDP datagrams are dropped
// (drop-tail) and TCP relays stop reading. 50 ms is in the range of real WAN
// router buffers (a fraction of to one bandwidth-delay product); a larger
// buffer would add that much queueing delay to every RTT measured under load.
const QueueTime = 50 * time.Millisecond

// Link is an emulated cable between side a and side b: a Profile per direction
// and a partition switch, shared by every relay built on it. The zero Link is
// a link with zero profiles. Safe for concurrent use.
type Link struct {
	dirs [2]pipe

	// healed is nil when the link is up; during a partition it is a channel
	// closed when the partition heals.
	healed atomic.Pointer[chan struct{}]
	partMu sync.Mutex
}

// NewLink returns a link with profile ab for a→b and ba for b→a.
func NewLink(ab, ba Profile) (*Link, error) {
	l := &Link{}
	for d, p := range []Profile{ab, ba} {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("%v: %w", Dir(d), err)
		}
		l.dirs[d].prof = p
	}
	return l, nil
}

// SetProfile changes the profile of one direction. It applies to data that
// arrives after the call; data already in flight keeps its release time.
func (l *Link) SetProfile(d Dir, p Profile) error {
	if !d.valid() {
		return fmt.Errorf("set profile: unknown direction %v", d)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("set profile %v: %w", d, err)
	}
	pp := &l.dirs[d]
	pp.mu.Lock()
	pp.prof = p
	pp.mu.Unlock()
	return nil
}

// Profile returns the current profile of one direction (zero for an unknown
// direction).
func (l *Link) Profile(d Dir) Profile {
	if !d.valid() {
		return Profile{}
	}
	return l.dirs[d].profile()
}

// SetPartition cuts (true) or heals (false) both directions of the link.
// See the package doc for what UDP and TCP relays do meanwhile.
func (l *Link) SetPartition(on bool) {
	l.partMu.Lock()
	defer l.partMu.Unlock()
	cur := l.healed.Load()
	switch {
	case on && cur == nil:
		ch := make(chan struct{})
		l.healed.Store(&ch)
	case !on && cur != nil:
		l.healed.Store(nil)
		close(*cur)
	}
}

// Partitioned reports whether the link is cut.
func (l *Link) Partitioned() bool { return l.healed.Load() != nil }

// waitHealed returns true at once if the link is up, else when it heals; it
// returns false if done is closed first.
func (l *Link) waitHealed(done <-chan struct{}) bool {
	for {
		ch := l.healed.Load()
		if ch == nil {
			return true
		}
		select {
		case <-*ch:
		case <-done:
			return false
		}
	}
}

// verdict is what a direction decides for arriving data.
type verdict int

const (
	pass verdict = iota
	dropLoss
	dropQueue
)

// pipe is one direction: a FIFO serializer (bandwidth, bounded queue) followed
// by a delay line. Its decision, admit, is a pure function of its state, the
// arrival time and the random source.
type pipe struct {
	mu     sync.Mutex
	prof   Profile
	freeAt time.Time // when the serializer has sent everything admitted so far
	last   time.Time // latest release time handed out; releases never go back
	rng    *rand.Rand
}

// admit decides the fate of n bytes arriving at now. lossy is true for
// datagrams, which may be lost or dropped at a full queue; a stream (lossy
// false) is always admitted and must itself wait until backlog is at most
// QueueTime before it offers more. release is when the data reaches the far
// side.
func (p *pipe) admit(now time.Time, n int, lossy bool) (release time.Time, backlog time.Duration, v verdict) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.admitLocked(now, now, n, lossy)
}

// admitStream admits n bytes of a stream taken as arriving at arrival, at wall
// time now.
func (p *pipe) admitStream(arrival, now time.Time, n int) (release time.Time, backlog time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	release, backlog, _ = p.admitLocked(arrival, now, n, false)
	return release, backlog
}

// admitBusy admits n bytes of a stream whose previous read filled its buffer:
// more data was already waiting in the source's socket, so the serializer is
// taken as busy since then, however late the reader ran. Without this, every
// time the relay is descheduled for longer than QueueTime on a loaded machine
// the emulated link would idle and a transfer would fall short of the
// bandwidth.
func (p *pipe) admitBusy(now time.Time, n int) (release time.Time, backlog time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	arrival := now
	if !p.freeAt.IsZero() && p.freeAt.Before(now) {
		arrival = p.freeAt
	}
	release, backlog, _ = p.admitLocked(arrival, now, n, false)
	return release, backlog
}

// admitLocked admits n bytes arriving at arrival, at wall time now.
func (p *pipe) admitLocked(arrival, now time.Time, n int, lossy bool) (release time.Time, backlog time.Duration, v verdict) {
	pr := p.prof
	if p.rng == nil {
		p.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	start := arrival
	if p.freeAt.After(start) {
		start = p.freeAt
	}
	if lossy && pr.Bandwidth > 0 && start.Sub(now) > QueueTime {
		return time.Time{}, start.Sub(now), dropQueue
	}
	end := start.Add(txTime(n, pr.Bandwidth))
	p.freeAt = end
	backlog = end.Sub(now)
	if lossy && pr.Loss > 0 && p.rng.Float64() < pr.Loss {
		// Lost on the wire: it used its share of the bandwidth.
		return time.Time{}, backlog, dropLoss
	}
	d := pr.Delay
	if pr.Jitter > 0 {
		d += time.Duration((p.rng.Float64()*2 - 1) * float64(pr.Jitter))
		d = max(d, 0)
	}
	release = end.Add(d)
	if release.Before(p.last) {
		release = p.last
	}
	p.last = release
	return release, backlog, pass
}

func (p *pipe) profile() Profile {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.prof
}

// DirStats counts what one direction of a relay did.
type DirStats struct {
	// Packets and Bytes were delivered: UDP datagrams, or TCP chunks (one per
	// read from the source).
	Packets, Bytes uint64
	// DropLoss counts datagrams lost to the Loss probability.
	DropLoss uint64
	// DropQueue counts datagrams dropped at a full queue (drop-tail).
	DropQueue uint64
	// DropPartition counts datagrams dropped during a partition.
	DropPartition uint64
	// DropError counts datagrams that could not be written, or refused when
	// the relay's mapping table was full.
	DropError uint64
}

// Drops is the total of every drop reason.
func (s DirStats) Drops() uint64 { return s.DropLoss + s.DropQueue + s.DropPartition + s.DropError }

// Stats counts what a relay did, oriented as the relay sees it: AtoB is from
// its clients to its target, whatever side of the Link they are on.
type Stats struct {
	AtoB, BtoA DirStats
	// Flows is the number of live UDP mappings or TCP connections; Accepted
	// the total ever created.
	Flows, Accepted uint64
}

type dirCounters struct {
	packets, bytes                         atomic.Uint64
	dropLoss, dropQueue, dropPart, dropErr atomic.Uint64
}

func (c *dirCounters) delivered(n int) {
	c.packets.Add(1)
	c.bytes.Add(uint64(n))
}

func (c *dirCounters) snapshot() DirStats {
	return DirStats{
		Packets: c.packets.Load(), Bytes: c.bytes.Load(),
		DropLoss: c.dropLoss.Load(), DropQueue: c.dropQueue.Load(),
		DropPartition: c.dropPart.Load(), DropError: c.dropErr.Load(),
	}
}

type counters struct {
	dir             [2]dirCounters // indexed by the relay's own orientation
	flows, accepted atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		AtoB: c.dir[AtoB].snapshot(), BtoA: c.dir[BtoA].snapshot(),
		Flows: uint64(c.flows.Load()), Accepted: uint64(c.accepted.Load()),
	}
}

// ErrNotLoopback is returned for an address outside 127.0.0.0/8.
var ErrNotLoopback = errors.New("not an IPv4 loopback address (127.0.0.0/8)")

// loopback parses an ip:port that must be in 127.0.0.0/8. Port 0 is allowed
// only if anyPort.
func loopback(s string, anyPort bool) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: want ip:port: %w", s, err)
	}
	ip := ap.Addr().Unmap()
	if !ip.Is4() || !ip.IsLoopback() {
		return netip.AddrPort{}, fmt.Errorf("address %q: %w", s, ErrNotLoopback)
	}
	if ap.Port() == 0 && !anyPort {
		return netip.AddrPort{}, fmt.Errorf("address %q: port 0", s)
	}
	return netip.AddrPortFrom(ip, ap.Port()), nil
}
