package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/journal"
	"github.com/sitesync/sitesync/internal/kind"
	"github.com/sitesync/sitesync/packsync"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/transport"
)

// Modes of replication.
const (
	Async  = "async"
	Quorum = "quorum"
	Sync   = "sync"
)

// Policy is the rule a write follows, fixed when the write begins: a change
// of the configuration applies to the next write.
type Policy struct {
	Mode    string
	Acks    int           // sites that must hold the write, origin included
	Timeout time.Duration // how long the write waits for its rule
	Sites   []string      // the placement: sites that hold the project
}

// Mesh is what the coordinator needs of the transport; *transport.Mesh is one.
type Mesh interface {
	packsync.Opener
	Request(ctx context.Context, peer string, kind transport.Kind, payload []byte) ([]byte, error)
	Handle(kind transport.Kind, h transport.Handler)
	HandleStream(kind transport.Kind, h transport.StreamHandler)
	Subscribe() (<-chan transport.PeerEvent, func())
	Peers() []transport.PeerState
}

// Config wires a coordinator to its site.
type Config struct {
	Site    string
	Repos   *git.Repos
	Store   refdb.Store
	Mesh    Mesh
	Policy  func(project string) Policy // the live rule for a project
	Guarded func(ref string) bool       // refs the refdb guards; nil: all
	State   string                      // directory for the journals
	// Env is added to the git processes that run a push (the hooks'
	// socket and configuration); PerRefEnv instead to those of a
	// non-atomic push (its hooks decide at git's "update"), when set.
	Env       []string
	PerRefEnv []string
	Log       *slog.Logger
	Reg       prometheus.Registerer
	// Fault names a test-only crash point; "" in production. See faults.go.
	Fault string
	// NoteDB turns on the NoteDb fast path of Write (notedb.go); nil: every
	// local write ships a pack. Peers apply delta messages either way.
	NoteDB *NoteDBConfig
	// OnMoved, if set, hears of every ref transaction at this site (see
	// Moved). It is called on the goroutine that moved the refs, with the
	// project's apply lock held: it must not block.
	OnMoved func(Moved)
	// DefaultHead is the branch HEAD of a repository created here points
	// at (projects.default_head); "" : git's default.
	DefaultHead string
	// MaxPack is the longest pack stream taken from a peer (mesh.max_pack);
	// 0: packsync.DefaultMaxPack.
	MaxPack int64
}

// Timing constants.
const (
	// prepareGrace is how long past its origin's timeout a peer keeps a
	// prepared write it has heard nothing about before it aborts it: an origin
	// whose refdb commit is still in flight at its deadline may yet decide.
	prepareGrace = 30 * time.Second
	// resolveAfter is how old a prepared write must be before a peer asks the
	// refdb about it: the origin's COMMIT normally arrives within an RTT.
	resolveAfter = 2 * time.Second
	// tickEvery paces the background loop (resolve prepared writes, redeliver
	// the outbound queue).
	tickEvery = time.Second
	// catchUpEvery is how often a site re-checks every project against the
	// refdb even when no peer event asked it to: the last line of defence
	// for convergence.
	catchUpEvery = time.Minute
	// refdbTimeout bounds one refdb call: long enough for a WAN round trip
	// to a loaded cluster, short enough that a write fails in human time.
	refdbTimeout = 10 * time.Second
	// deliverTimeout bounds one attempt to deliver a decided write to a peer.
	deliverTimeout = 5 * time.Minute
)

// Coordinator runs the writes of one site and applies those of its peers.
// Safe for concurrent use.
type Coordinator struct {
	cfg      Config
	log      *slog.Logger
	recv     *packsync.Receiver
	prepared *journal.Journal // writes this site prepared as a peer
	outbound *journal.Journal // decided writes not yet delivered to every peer
	metrics  *metrics
	nd       *noteDB // the NoteDb fast path (notedb.go)
	parked   parking // refs that fail to reach the refdb's value here
	retries  retries // backoff of outbound entries that failed to deliver
	imports  imports // imports and copies of imported projects (import.go)

	mu       sync.Mutex
	projects map[string]*project
	pushes   map[string]*write // writes of pushes in progress, by txn

	delivering sync.Map // txn → struct{}: outbound delivery in progress
	caughtUp   atomic.Bool
	resolving  atomic.Bool   // a resolvePrepared pass is running
	kick       chan struct{} // wakes the catch-up loop
	bg         sync.WaitGroup
	bgCtx      context.Context // guarded by mu
	closed     bool            // guarded by mu: Run has returned
}

// New builds a coordinator and registers its handlers on the mesh; call it
// before the mesh runs.
func New(cfg Config) (*Coordinator, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Guarded == nil {
		cfg.Guarded = func(string) bool { return true }
	}
	// A push's decided marker (push.go) outlives a crash of the daemon
	// that made it; no push of that daemon is running any more.
	_ = os.RemoveAll(filepath.Join(cfg.State, "decided"))
	prep, err := journal.Open(filepath.Join(cfg.State, "prepared"))
	if err != nil {
		return nil, err
	}
	out, err := journal.Open(filepath.Join(cfg.State, "outbound"))
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Reg)
	if err != nil {
		return nil, err
	}
	c := &Coordinator{
		cfg:      cfg,
		log:      cfg.Log.With("component", "coord", "site", cfg.Site),
		prepared: prep,
		outbound: out,
		metrics:  m,
		projects: make(map[string]*project),
		pushes:   make(map[string]*write),
		kick:     make(chan struct{}, 1),
		bgCtx:    context.Background(),
	}
	if cfg.Reg != nil {
		parked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sitesync_coord_parked_refs", Help: "Refs this site has failed to move to the refdb's value for a while (see /api/v1/status).",
		}, func() float64 { return float64(len(c.Parked())) })
		if err := cfg.Reg.Register(parked); err != nil {
			return nil, err
		}
	}
	if c.nd, err = newNoteDB(cfg.NoteDB, cfg.Reg); err != nil {
		return nil, err
	}
	c.recv = packsync.NewReceiver(c.openForPeer, cfg.MaxPack, cfg.Log)
	cfg.Mesh.HandleStream(kind.Pack, c.recv.Handle)
	cfg.Mesh.Handle(kind.Prepare, c.handlePrepare)
	cfg.Mesh.Handle(kind.Commit, c.handleCommit)
	cfg.Mesh.Handle(kind.Abort, c.handleAbort)
	cfg.Mesh.Handle(kind.Fetch, c.handleFetch)
	cfg.Mesh.Handle(kind.Create, c.handleCreate)
	cfg.Mesh.Handle(kind.Projects, c.handleProjects)
	cfg.Mesh.Handle(kind.PrepareDelta, c.handlePrepareDelta)
	cfg.Mesh.Handle(kind.CommitDelta, c.handleCommitDelta)
	cfg.Mesh.Handle(kind.Import, c.handleImport)
	cfg.Mesh.Handle(kind.Delete, c.handleDelete)
	return c, nil
}

// Run does the background work until ctx ends: it catches up with the refdb
// at start and whenever a peer comes back, resolves prepared writes whose
// origin went quiet, and redelivers decided writes to peers that missed
// them. It returns after every goroutine it started has exited.
func (c *Coordinator) Run(ctx context.Context) error {
	c.mu.Lock()
	c.bgCtx = ctx
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.nd.close() // its flushes may still start background work
		c.bg.Wait()
	}()
	events, cancel := c.cfg.Mesh.Subscribe()
	defer cancel()

	c.background(c.catchUpLoop)
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			if ev.Kind == transport.EventUp {
				c.kickCatchUp()
				c.redeliver(ctx, ev.Peer)
			}
		case <-tick.C:
			// Neither may hold up the loop: each runs in the background,
			// one pass at a time.
			if c.resolving.CompareAndSwap(false, true) {
				c.background(func(ctx context.Context) {
					defer c.resolving.Store(false)
					c.resolvePrepared(ctx)
				})
			}
			c.redeliver(ctx, "")
		}
	}
}

// Ready says whether the site has caught up with the refdb once since it
// started, and no ref has failed to reach the refdb's value for parkAfter.
func (c *Coordinator) Ready() error {
	if !c.caughtUp.Load() {
		return errors.New("catching up with the refdb")
	}
	return parkedError(c.Parked())
}

// background runs f on a goroutine that Run waits for; it reports false,
// and runs nothing, once Run has returned.
func (c *Coordinator) background(f func(ctx context.Context)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	ctx := c.bgCtx
	c.bg.Go(func() { f(ctx) })
	return true
}

// policy is the live rule of project, with this site always in the
// placement it is asked about.
func (c *Coordinator) policy(project string) Policy {
	p := c.cfg.Policy(project)
	p.Sites = slices.Clone(p.Sites)
	if p.Timeout <= 0 {
		p.Timeout = 10 * time.Second
	}
	return p
}

// peersOf is the placement of p without this site.
func (c *Coordinator) peersOf(p Policy) []string {
	out := make([]string, 0, len(p.Sites))
	for _, s := range p.Sites {
		if s != c.cfg.Site {
			out = append(out, s)
		}
	}
	return out
}

func (c *Coordinator) holds(project string) bool {
	return slices.Contains(c.cfg.Policy(project).Sites, c.cfg.Site)
}

// openForPeer opens (creating if needed) the repository of a project that a
// peer sends data for; a project not placed here is refused.
func (c *Coordinator) openForPeer(ctx context.Context, project string) (string, error) {
	if !c.holds(project) {
		return "", fmt.Errorf("project %q is not placed at site %s", project, c.cfg.Site)
	}
	if r, err := c.cfg.Repos.Open(project); err == nil {
		return r.Dir, nil
	} else if !errors.Is(err, git.ErrNotFound) {
		return "", err
	}
	if _, err := c.createRepo(ctx, project); err != nil {
		return "", err
	}
	r, err := c.cfg.Repos.Open(project)
	if err != nil {
		return "", err
	}
	return r.Dir, nil
}

// projectOf maps a repository directory (a hook's GIT_DIR) to its project.
func (c *Coordinator) projectOf(dir string) (string, error) {
	root := c.cfg.Repos.Root().Dir()
	rel, err := filepath.Rel(root, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("repository %s is not under %s", dir, root)
	}
	rel = filepath.ToSlash(rel)
	name, ok := strings.CutSuffix(rel, ".git")
	if !ok {
		return "", fmt.Errorf("repository %s is not named <project>.git", dir)
	}
	if err := git.ValidateName(name); err != nil {
		return "", err
	}
	return name, nil
}

// localProjects lists the repositories under the root.
func (c *Coordinator) localProjects() ([]string, error) { return c.cfg.Repos.Root().List() }

// QueueDepths counts writes in flight between this site and its peers.
type QueueDepths struct {
	Outbound int // decided here, not yet delivered to every peer
	Prepared int // prepared here for another origin, not yet resolved
	// Behind is, for each peer with any, the transactions decided here
	// that it has not been told of yet.
	Behind map[string]Backlog
}

// Backlog is what one peer has not been told of yet: outbound
// transactions (a push, an API write, or a NoteDb batch of writes).
type Backlog struct {
	Txns   int
	Oldest time.Time // when the oldest of them was prepared
}

// Queues reports the depths of the journals.
func (c *Coordinator) Queues() QueueDepths {
	out, _ := c.outbound.List()
	prep, _ := c.prepared.List()
	q := QueueDepths{Outbound: len(out), Prepared: len(prep), Behind: map[string]Backlog{}}
	for _, e := range out { // oldest first
		for _, peer := range e.Peers {
			b := q.Behind[peer]
			if b.Txns == 0 {
				b.Oldest = e.Prepared
			}
			b.Txns++
			q.Behind[peer] = b
		}
	}
	return q
}
