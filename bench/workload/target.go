package workload

import (
	"context"
	"slices"
	"time"

	"github.com/sitesync/sitesync/bench/link"
)

// Kind says how an update enters the system at its origin.
type Kind int

const (
	// ClientPush: a git client pushes New to Ref from the repository at
	// Update.Source (the push and pack workloads).
	ClientPush Kind = iota
	// LocalWrite: the objects are already in the origin's repository and a
	// local writer (Gerrit's NoteDb, a script) moves Ref from Old to New
	// (sitesync: POST /api/v1/projects/{name}/refs; the notedb workload).
	LocalWrite
)

func (k Kind) String() string {
	if k == LocalWrite {
		return "local-write"
	}
	return "client-push"
}

// Update is one ref update at the origin site.
type Update struct {
	Kind Kind
	Ref  string
	// Old is the value Ref has at the origin before the update (git's zero
	// id for a new ref); New the value after.
	Old, New string
	// Source is the client repository holding New's objects (ClientPush).
	Source string
	// Bytes is the size of the objects New adds, when the floors should
	// count their transfer time (the pack workload); 0 measures the update
	// against the small-update floors.
	Bytes int64
	// Raw is the size of the contents of the objects New brings that Old
	// does not reach (git rev-list --objects New --not Old, summed object
	// sizes): what the update must ship before any compression. 0 when
	// unknown.
	Raw int64
}

// Target is the system under test, started at an origin site and a set of
// peer sites that all hold the same project.
type Target interface {
	// Name labels the target's samples: "git-push", "git-fetch",
	// "sitesync/quorum".
	Name() string
	// Write performs u at the origin and returns when the system
	// acknowledges it to the writer.
	Write(ctx context.Context, u Update) (acked time.Time, err error)
	// Visible blocks until site holds ref at value, or ctx ends, and
	// returns when it did.
	Visible(ctx context.Context, site, ref, value string) (time.Time, error)
	// Sites are the peer sites to watch (the origin excluded).
	Sites() []string
	// Close stops the system and waits for everything it started.
	Close() error
}

// Quorum is implemented by a Target whose acknowledgement waits for more
// than the origin: AckSites is how many sites, the origin included, must
// hold an update before it is acknowledged (W). A Target without it
// acknowledges on the origin alone.
type Quorum interface {
	AckSites() int
}

// Traffic is what an origin site exchanged with its peers, summed over the
// peers, since its Target started.
type Traffic struct {
	// Out is the bytes the origin sent to its peers, In the bytes it got
	// from them.
	Out, In int64
}

// Sub is t minus an earlier reading.
func (t Traffic) Sub(earlier Traffic) Traffic {
	return Traffic{Out: t.Out - earlier.Out, In: t.In - earlier.In}
}

// Metered is implemented by a Target that counts the bytes between its
// origin and its peers. What a byte is depends on the Target (see its doc):
// the baselines count TCP payload through the relays (HTTP and the git
// protocol, ref advertisement included), sitesync its transport's frames
// and stream bodies. The runners read it before the first update and after
// each update is visible everywhere, never while an update is timed.
type Metered interface {
	// Traffic returns the counts so far.
	Traffic(ctx context.Context) (Traffic, error)
	// WireNote says what the counts count, for the report's notes.
	WireNote() string
}

// Seed is the state every site of a Target starts from: bare repositories
// to copy, never to modify.
type Seed struct {
	// Project is the project's name at every site.
	Project string
	// Origin is the repository of the origin site.
	Origin string
	// Peers is the repository of every peer site.
	Peers string
}

// Factory starts one kind of Target. Each workload run gets a fresh Target
// started from its own Seed, so runs do not see each other's updates.
type Factory struct {
	Name  string
	Start func(ctx context.Context, seed Seed) (Target, error)
}

// Topology is the emulated network: Sites[0] is the origin, and every pair of
// sites is joined by a link with Profile in each direction.
type Topology struct {
	Sites   []string
	Profile link.Profile
}

// DefaultTopology is the default: 3 sites, 50 ms one-way between
// every pair (San Francisco ↔ Bangalore's physical minimum), 1 Gbit/s.
func DefaultTopology() Topology {
	return Topology{
		Sites:   []string{"a", "b", "c"},
		Profile: link.Profile{Delay: 50 * time.Millisecond, Bandwidth: 1e9 / 8},
	}
}

// Origin is the origin site.
func (t Topology) Origin() string { return t.Sites[0] }

// Peers are the sites other than the origin.
func (t Topology) Peers() []string { return slices.Clone(t.Sites[1:]) }

// OneWay is the one-way delay from the origin to site (0 for the origin).
func (t Topology) OneWay(site string) time.Duration {
	if site == t.Origin() {
		return 0
	}
	return t.Profile.Delay
}

// transfer is the time bytes take to cross a link at its bandwidth.
func (t Topology) transfer(bytes int64) time.Duration {
	if t.Profile.Bandwidth <= 0 || bytes <= 0 {
		return 0
	}
	return time.Duration(float64(bytes) / float64(t.Profile.Bandwidth) * float64(time.Second))
}

// AckFloor is the least acknowledgement latency when w sites, the origin
// included, must hold bytes of new objects: one RTT to the w-th nearest site
// (the origin is the nearest) plus, if that site is remote, the bytes'
// transfer time. w ≤ 1 (the origin alone, over loopback) has no floor.
func (t Topology) AckFloor(w int, bytes int64) time.Duration {
	if w <= 1 {
		return 0
	}
	d := make([]time.Duration, 0, len(t.Sites))
	for _, s := range t.Sites {
		d = append(d, t.OneWay(s))
	}
	slices.Sort(d)
	w = min(w, len(d))
	return 2*d[w-1] + t.transfer(bytes)
}

// VisibleFloor is the least time until site holds an update of bytes: one
// one-way delay for a small update, the transfer time plus one RTT for a
// pack (the bytes must be sent, and the transfer must be set up and
// confirmed).
func (t Topology) VisibleFloor(site string, bytes int64) time.Duration {
	if bytes <= 0 {
		return t.OneWay(site)
	}
	return t.transfer(bytes) + 2*t.OneWay(site)
}
