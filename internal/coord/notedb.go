package coord

// The NoteDb fast path of the local write API (DESIGN.md §5, issue #7).
//
// At the origin, Write classifies a write (notedbfast.Classifier over the
// repository's long-lived cat-file). A write whose refs are all NoteDb refs
// and whose new objects are small enough joins the project's group-commit
// batcher; anything else goes the pack path (origin.go). One flush of a
// batch:
//
//  1. votes: writes whose rule needs votes go to every placement peer as ONE
//     PREPARE-DELTA (a notedbfast frame of all their deltas, txn = the
//     batch id). The peer verifies and durably writes the objects
//     (notedbfast.Applier), journals the batch once, and votes per write:
//     yes, no, or missing (with the ids it lacks and its values of the
//     write's refs). For missing writes the origin sends the chain back to
//     what the peer has (notedbfast.Chain, bounded) and asks again; past the
//     bound it ships a pack into the batch's quarantine and asks once more.
//     Each write is counted with its own Tally and rule.
//  2. decision: the writes that reached their rule are cut, in submission
//     order, into groups of disjoint refs (successive updates of one meta
//     ref fall in successive groups); each group is one refdb CAS, the
//     first named by the batch id. A group that conflicts is retried one
//     CAS per write, so each write gets its own verdict.
//  3. after: one outbound queue entry for the batch (txn = batch id), ONE
//     COMMIT-DELTA per peer (the versions, plus the frame for peers that do
//     not hold every decided write: async mode, a peer that voted no),
//     and one local update-ref transaction for every decided write. Peers
//     write the objects and call the commit path of every other write
//     (commit → applyVersions: refs only move forward).
//
// Bytes on the wire: a batch of up to ndBasedWrites writes goes in a frame
// compressed against the objects its refs move from (notedbfast.Bases),
// which a peer that is up to date holds; a peer that lacks them answers a
// PREPARE-DELTA with their ids (it gets the plain frame, then the chain or
// pack as usual) and refuses a COMMIT-DELTA (it gets the versions spelled
// out, and fetches). Versions name the update that gives their ref and
// value: in the frame, or, for a peer that voted yes on every write at
// once, in its prepared entry (deltaHeader.Entry); a peer without the
// entry refuses, and gets them spelled out.
//
// Crash safety is the pack path's: a peer's journal entry is named by the
// batch id, which is also the txn of the records of the batch's first refdb
// group (nearly always its only one), so a peer whose origin died after the
// decision commits from the refdb alone; a write decided otherwise (alone
// after a conflict, or in a later group) is not named by the batch id, and
// reaches such a peer through its deadline abort and catch-up instead. The
// outbound entry redelivers through the ordinary COMMIT (the peer fetches
// what it lacks). Objects reach a peer's object store when it prepares, not
// when the write is decided: a write that fails leaves unreferenced (never
// unverified) objects, which gc removes.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/journal"
	"github.com/sitesync/sitesync/internal/kind"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/txn"
	"github.com/sitesync/sitesync/notedbfast"
	"github.com/sitesync/sitesync/packsync"
	"github.com/sitesync/sitesync/transport"
)

// NoteDBConfig turns on the NoteDb fast path of the local write API. Both
// functions read the live configuration: a change applies to the next
// write.
type NoteDBConfig struct {
	Match    func(ref string) bool // notedb.refs; nil: notedbfast.DefaultRefs
	MaxBytes func() int64          // notedb.max_bytes; nil or ≤ 0: notedbfast.DefaultMaxBytes
	// MaxInFlight is how many batches of one project may be between their
	// first message and their decision at once; 0 means 1. More overlaps
	// the round trips of successive batches, at the price of more
	// conflicts between batches that touch the same ref.
	MaxInFlight int
}

// Bounds of the fast path.
const (
	// ndBatchWrites: at most this many writes per batch (and frame). 256
	// writes of the 64 KiB maximum are 16 MiB raw, mesh.max_frame's
	// default; real ones are ~600 bytes.
	ndBatchWrites = 256
	// ndBatchBytes bounds the raw object bytes of one batch so its frame
	// stays far below mesh.max_frame even uncompressed.
	ndBatchBytes = 4 << 20
	// ndBasedWrites: a batch of at most this many writes goes in a frame
	// compressed against the objects its refs move from, which a peer
	// that is up to date holds (notedbfast.EncodeBased): a lone meta
	// update costs 0.41 of its raw bytes instead of 0.56 on
	// plugins_high-availability. Larger batches compress well against
	// themselves (~0.21) and would spend ~0.3 ms per frame on it.
	ndBasedWrites = 8
)

// ndChainLimits bound the chain an origin sends to a peer that lacks a
// parent; past them it ships a pack.
var ndChainLimits = notedbfast.ChainLimits{MaxObjects: 4096, MaxBytes: 1 << 20}

// noteDB is the coordinator's fast path state.
type noteDB struct {
	cfg     *NoteDBConfig // nil: the origin side is off
	metrics *notedbfast.Metrics
	resends *prometheus.CounterVec // {how}: plain, chain or pack, to a peer that lacked objects
	commits *prometheus.CounterVec // {form}: COMMIT-DELTAs sent, by form
	codec   *notedbfast.Codec
	applier *notedbfast.Applier

	mu       sync.Mutex
	batchers map[string]*notedbfast.Batcher[*ndWrite, Result] // by project
	objects  map[string]*notedbfast.ObjectCache               // by project, over its repository's cat-file
	seq      map[string]uint64                                // project+peer → Seq of the last COMMIT-DELTA sent there
	closed   bool

	// At a peer: the COMMIT-DELTAs of each origin and project, in Seq order.
	inMu sync.Mutex
	in   map[string]*inOrder // origin+project
}

// inOrder is where a peer is in one origin's numbered COMMIT-DELTAs of a
// project.
type inOrder struct {
	next    uint64        // the Seq whose turn it is; 0: none seen yet (1 is)
	advance chan struct{} // closed and replaced when next moves
}

// orderWait bounds how long a COMMIT-DELTA waits for an earlier one that
// may never come (lost with a connection; the outbound queue redelivers
// it as a plain COMMIT): its objects then miss a parent at worst, which
// the commit fetches.
const orderWait = 500 * time.Millisecond

// turn waits until the COMMIT-DELTA numbered seq from origin for project
// may write its objects (or orderWait passed), and returns the function to
// call once it has. An unnumbered message, or one numbered at or below the
// next expected (a duplicate, or an origin that restarted and counts
// anew), goes at once. Before the first, 1 is expected: a peer that
// restarted waits orderWait once for a predecessor it will not see.
func (n *noteDB) turn(ctx context.Context, origin, project string, seq uint64) func() {
	if seq == 0 {
		return func() {}
	}
	key := origin + "\x00" + project
	deadline := time.NewTimer(orderWait)
	defer deadline.Stop()
	n.inMu.Lock()
	st := n.in[key]
	if st == nil {
		st = &inOrder{advance: make(chan struct{})}
		n.in[key] = st
	}
	for seq > max(st.next, 1) {
		ch := st.advance
		n.inMu.Unlock()
		waited := true
		select {
		case <-ch:
			waited = false
		case <-deadline.C:
		case <-ctx.Done():
		}
		n.inMu.Lock()
		if waited {
			break
		}
	}
	n.inMu.Unlock()
	return func() {
		n.inMu.Lock()
		defer n.inMu.Unlock()
		if seq+1 > st.next {
			st.next = seq + 1
		}
		close(st.advance)
		st.advance = make(chan struct{})
	}
}

func newNoteDB(cfg *NoteDBConfig, reg prometheus.Registerer) (*noteDB, error) {
	var m *notedbfast.Metrics
	if reg != nil {
		m = notedbfast.NewMetrics(reg)
	}
	codec, err := notedbfast.NewCodec(notedbfast.Dictionary(), m)
	if err != nil {
		return nil, err
	}
	resends := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sitesync_notedb_resends_total",
		Help: "Writes resent to a peer that lacked objects they build on, by how (plain: a frame that was compressed against them; chain; pack).",
	}, []string{"how"})
	commits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sitesync_notedb_commit_deltas_total",
		Help: "COMMIT-DELTAs sent, by form: entry (versions named in the peer's prepared entry), versions (spelled out), frame, based (a frame against the peer's objects), spelled (a named form the peer refused, sent again spelled out).",
	}, []string{"form"})
	if reg != nil {
		for _, col := range []prometheus.Collector{resends, commits} {
			if err := reg.Register(col); err != nil {
				return nil, err
			}
		}
	}
	return &noteDB{cfg: cfg, metrics: m, resends: resends, commits: commits, codec: codec, applier: notedbfast.NewApplier(m),
		batchers: make(map[string]*notedbfast.Batcher[*ndWrite, Result]), objects: make(map[string]*notedbfast.ObjectCache),
		seq: make(map[string]uint64), in: make(map[string]*inOrder)}, nil
}

// close stops the batchers (queued writes fail with ErrClosed) and the
// applier's processes.
func (n *noteDB) close() {
	n.mu.Lock()
	n.closed = true
	bs := n.batchers
	n.batchers = map[string]*notedbfast.Batcher[*ndWrite, Result]{}
	n.mu.Unlock()
	for _, b := range bs {
		b.Close()
	}
	_ = n.applier.Close()
}

// ndWrite is one write on the fast path at its origin.
type ndWrite struct {
	w       *write
	repo    *git.Repo
	objects *notedbfast.ObjectCache // the project's recent objects, over repo.Objects
	objs    []notedbfast.Object
	bytes   int64
	start   time.Time
}

func (nw *ndWrite) delta() notedbfast.Delta {
	return notedbfast.Delta{Project: nw.w.project, Txn: nw.w.id, Objects: nw.objs, Updates: toFast(nw.w.updates)}
}

func toFast(ups []Update) []notedbfast.Update {
	out := make([]notedbfast.Update, len(ups))
	for i, u := range ups {
		out[i] = notedbfast.Update{Ref: u.Ref, Old: u.Old, New: u.New}
	}
	return out
}

func fromFast(ups []notedbfast.Update) []Update {
	out := make([]Update, len(ups))
	for i, u := range ups {
		out[i] = Update{Ref: u.Ref, Old: u.Old, New: u.New}
	}
	return out
}

// writeNoteDB runs ups on the fast path when they qualify; fast is false
// when the write must take the pack path instead (nothing was done then).
func (c *Coordinator) writeNoteDB(ctx context.Context, project string, repo *git.Repo, ups []Update) (res Result, fast bool, err error) {
	cfg := c.nd.cfg
	if cfg == nil {
		return Result{}, false, nil
	}
	var maxBytes int64
	if cfg.MaxBytes != nil {
		maxBytes = cfg.MaxBytes()
	}
	cl, err := notedbfast.NewClassifier(notedbfast.Config{Match: cfg.Match, MaxBytes: maxBytes}, c.nd.metrics)
	if err != nil {
		return Result{}, true, err
	}
	// Detached: a client that goes away mid-read would kill the
	// repository's shared cat-file under every other write. The walk is
	// bounded by notedb.max_bytes.
	objects := c.nd.objectCache(project, repo.Objects)
	cls, err := cl.Classify(context.WithoutCancel(ctx), objects, toFast(ups))
	switch {
	case errors.Is(err, git.ErrObjectMissing):
		return Result{}, true, fmt.Errorf("%w: objects of the write are not in %q at site %s: %v", ErrInvalid, project, c.cfg.Site, err)
	case err != nil:
		return Result{}, true, err
	case cls.Path != notedbfast.PathDelta:
		return Result{}, false, nil
	}
	w := c.localWrite(project, repo.Dir, ups)
	p := c.project(project)
	p.begin(w.id, ups)
	defer p.end(w.id)
	b, err := c.nd.batcher(project, cfg, c.flushNoteDB)
	if err != nil {
		return Result{}, true, err
	}
	res, err = b.Submit(ctx, &ndWrite{w: w, repo: repo, objects: objects, objs: cls.Objects, bytes: cls.Bytes, start: time.Now()})
	return res, true, err
}

func (n *noteDB) batcher(project string, cfg *NoteDBConfig, flush notedbfast.FlushFunc[*ndWrite, Result]) (*notedbfast.Batcher[*ndWrite, Result], error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, notedbfast.ErrClosed
	}
	b := n.batchers[project]
	if b == nil {
		b = notedbfast.NewBatcher(notedbfast.BatcherConfig[*ndWrite]{
			MaxItems: ndBatchWrites, MaxBytes: ndBatchBytes, MaxInFlight: cfg.MaxInFlight,
			Size:    func(w *ndWrite) int64 { return w.bytes },
			Observe: n.metrics.ObserveBatch,
		}, flush)
		n.batchers[project] = b
	}
	return b, nil
}

// ndObjectCache bounds the objects kept per project by objectCache: the
// commits and trees the next updates of the project's busy changes move
// from.
const ndObjectCache = 4 << 20

// objectCache returns the cache of project's objects read through r, its
// repository's cat-file (a new one when the repository was reopened).
func (n *noteDB) objectCache(project string, r notedbfast.ObjectReader) *notedbfast.ObjectCache {
	n.mu.Lock()
	defer n.mu.Unlock()
	oc := n.objects[project]
	if oc == nil || oc.Reader() != r {
		oc = notedbfast.NewObjectCache(r, ndObjectCache)
		n.objects[project] = oc
	}
	return oc
}

// flushNoteDB runs one batch of writes of one project to their decisions
// and returns one result per write.
func (c *Coordinator) flushNoteDB(ctx context.Context, batch []*ndWrite, release func()) []notedbfast.Result[Result] {
	out := make([]notedbfast.Result[Result], len(batch))
	project := batch[0].w.project
	g := txn.New(c.cfg.Site, time.Now())
	// Each write runs its own originTxn, as a push does; the batch only
	// shares the messages that carry them.
	lives := make([]*originTxn, len(batch))
	steps := make([]originStep, len(batch))
	var voters []int
	var voterPeers []string
	timeout := time.Duration(0)
	for i, nw := range batch {
		pol := nw.w.policy
		lives[i] = newOriginTxn(c.cfg.Site, pol, c.peersOf(pol))
		steps[i] = lives[i].Start()
		if len(steps[i].Prepare) > 0 {
			voters = append(voters, i)
			voterPeers = union(voterPeers, steps[i].Prepare)
			timeout = max(timeout, pol.Timeout)
		}
	}

	// 1. Votes.
	var held map[string]*peerVotes // per peer: the writes it holds
	var prepFrame []byte
	if len(voters) > 0 {
		prepFrame, held = c.ndVotes(ctx, g, project, batch, voters, voterPeers, lives, steps, timeout)
	}
	var cands []int
	for i := range batch {
		if !steps[i].Done && !steps[i].Decide {
			steps[i] = lives[i].Timeout()
		}
		if steps[i].Decide {
			cands = append(cands, i)
			continue
		}
		c.metrics.writes.WithLabelValues(outcome(steps[i].Err)).Inc()
		out[i].Err = steps[i].Err
	}

	// 2. The decision.
	vers, txns, errs := c.ndDecide(ctx, g, project, batch, cands)
	// The next batch may vote and decide while this one is delivered and
	// committed here; deliveries and local commits keep decision order.
	p := c.project(project)
	p.ndCommit.Lock()
	defer p.ndCommit.Unlock()
	release()
	var decided []int
	for _, i := range cands {
		// The batch's releases and COMMIT-DELTAs carry the step's aborts
		// and deliveries.
		step := lives[i].Decided(errs[i])
		if step.Err != nil {
			c.metrics.writes.WithLabelValues(outcome(step.Err)).Inc()
			out[i].Err = step.Err
			continue
		}
		decided = append(decided, i)
		c.metrics.writes.WithLabelValues("ok").Inc()
		c.metrics.decideLatency.WithLabelValues(batch[i].w.policy.Mode).Observe(time.Since(batch[i].start).Seconds())
		out[i].Value = Result{Txn: txns[i], Acks: step.Acks, Versions: vers[i]}
	}

	// 3. Queue, peers, local commit.
	var peers []string
	for _, i := range decided {
		peers = union(peers, c.peersOf(batch[i].w.policy))
	}
	if len(decided) == 0 {
		if len(voters) > 0 {
			c.ndRelease(g, project, voterPeers)
		}
		return out
	}
	var vs []Version
	for _, i := range decided {
		vs = append(vs, vers[i]...)
	}
	vs = latest(vs)
	if len(peers) > 0 {
		e := decidedEntry(g, project, c.cfg.Site, peers, vs, time.Now())
		// Ours to deliver: redeliver must not race us to the entry.
		c.delivering.Store(g, struct{}{})
		ws := make([]*ndWrite, len(decided))
		for k, i := range decided {
			ws[k] = batch[i]
		}
		if !slices.Equal(decided, voters) {
			prepFrame = nil // it holds other writes than the decided ones
		}
		vws := make([]*ndWrite, len(voters))
		for k, i := range voters {
			vws[k] = batch[i]
		}
		// The peers are told while the entry is fsynced: were this site
		// to die before it is, the refdb holds the decision, which the
		// peers' catch-up applies.
		queued := make(chan struct{})
		c.ndDeliver(e, vs, ws, decided, held, prepFrame, updatesOf(vws), queued)
		if err := c.outbound.Put(e); err != nil {
			c.log.Error("outbound queue", "txn", g, "error", err)
		}
		close(queued)
	}
	// Peers asked to prepare that hold none of the decided writes' project
	// placement still have the batch journaled: release them.
	if rest := slices.DeleteFunc(slices.Clone(voterPeers), func(p string) bool { return slices.Contains(peers, p) }); len(rest) > 0 {
		c.ndRelease(g, project, rest)
	}
	// The decision stands and the queue holds it; the local commit runs
	// while the peers commit theirs.
	c.ndLocalCommit(ctx, project, batch, decided, vers)
	return out
}

// union adds the elements of b missing from a.
func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

// latest keeps, for each ref, its highest version, in first-seen order.
func latest(vs []Version) []Version {
	at := make(map[string]int, len(vs))
	var out []Version
	for _, v := range vs {
		if k, ok := at[v.Ref]; ok {
			if v.Version > out[k].Version {
				out[k] = v
			}
			continue
		}
		at[v.Ref] = len(out)
		out = append(out, v)
	}
	return out
}

// peerVotes is what one peer answered for a batch, once done is closed.
type peerVotes struct {
	done chan struct{}
	yes  map[int]bool // writes (index into the batch) the peer holds
	// clean: the peer voted yes on every voting write at the first asking
	// it could read, so its prepared entry holds their updates in order.
	clean bool
}

// ndFrame encodes ds, the deltas of writes read through r (the
// repository's shared cat-file): a few writes against
// the objects their refs move from (based reports it), more by
// themselves.
func (c *Coordinator) ndFrame(ctx context.Context, r notedbfast.ObjectReader, ds []notedbfast.Delta) (frame []byte, based bool, err error) {
	if len(ds) <= ndBasedWrites {
		// Reads of the shared cat-file never run under a cancellable
		// context: a cancelled read kills the process.
		bases, err := notedbfast.Bases(context.WithoutCancel(ctx), r, ds)
		if err == nil && len(bases) > 0 {
			frame, err = c.nd.codec.EncodeBased(bases, ds...)
		}
		if err != nil {
			c.log.Debug("frame against the peers' objects", "project", ds[0].Project, "error", err)
		}
		if err == nil && frame != nil {
			return frame, true, nil
		}
	}
	frame, err = c.nd.codec.Encode(ds...)
	return frame, false, err
}

// updatesOf is the ref updates of writes, in order: those of their frame,
// and those of the entry a peer prepares when it holds every one.
func updatesOf(ws []*ndWrite) []Update {
	var ups []Update
	for _, nw := range ws {
		ups = append(ups, nw.w.updates...)
	}
	return ups
}

// nameVersions returns, per version, the index of the last of ups that
// gives its ref and value; nil if one is not there.
func nameVersions(vs []Version, ups []Update) []int {
	at := make(map[[2]string]int, len(ups))
	for k, u := range ups {
		at[[2]string{u.Ref, u.New}] = k
	}
	out := make([]int, len(vs))
	for i, v := range vs {
		k, ok := at[[2]string{v.Ref, v.Value}]
		if !ok {
			return nil
		}
		out[i] = k
	}
	return out
}

// ndVotes asks every peer to prepare the voting writes of the batch and
// feeds each write's votes to its own originTxn (steps[i] is its latest
// step), until every write's rule holds or cannot, or the timeout. It
// returns the prepare frame and, per peer, its answer (which a peer still
// working after the rules held fills in later).
func (c *Coordinator) ndVotes(ctx context.Context, g, project string, batch []*ndWrite, voters []int, peers []string, lives []*originTxn, steps []originStep, timeout time.Duration) ([]byte, map[string]*peerVotes) {
	held := make(map[string]*peerVotes, len(peers))
	ds := make([]notedbfast.Delta, len(voters))
	for k, i := range voters {
		ds[k] = batch[i].delta()
	}
	frame, based, err := c.ndFrame(ctx, batch[voters[0]].objects, ds)
	plain := sync.OnceValues(func() ([]byte, error) {
		if !based {
			return frame, nil
		}
		return c.nd.codec.Encode(ds...)
	})
	if err != nil {
		// Our own objects do not encode: no peer can vote for them.
		for _, i := range voters {
			for _, p := range peers {
				steps[i] = lives[i].Vote(p, voteMsg{Vote: voteNo, Reason: "encode: " + err.Error()})
			}
		}
		return nil, held
	}
	// A peer that answers after the rules hold still gets to finish: it
	// then holds the objects the next batch builds on, and its COMMIT-DELTA
	// need not carry them again. Its request ends at the timeout at the
	// latest.
	voteCtx, cancel := context.WithTimeout(ctx, timeout)
	type answer struct {
		peer  string
		votes map[int]voteMsg
	}
	answers := make(chan answer, len(peers))
	var asking sync.WaitGroup
	for _, p := range peers {
		pv := &peerVotes{done: make(chan struct{}), yes: map[int]bool{}}
		held[p] = pv
		asking.Go(func() {
			votes, clean := c.ndPrepareAt(voteCtx, g, project, p, batch, voters, frame, plain, timeout)
			for i, v := range votes {
				if v.Vote == voteYes {
					pv.yes[i] = true
				}
			}
			pv.clean = clean
			close(pv.done)
			answers <- answer{p, votes}
		})
	}
	// The votes may outlive the decision (a peer still preparing tells the
	// delivery whether it needs the objects again); Run owns their end.
	defer func() {
		if !c.background(func(context.Context) {
			asking.Wait()
			cancel()
		}) {
			cancel()
			asking.Wait()
		}
	}()
	open := func() bool {
		for _, i := range voters {
			if !steps[i].Done && !steps[i].Decide {
				return true
			}
		}
		return false
	}
	for range peers {
		select {
		case a := <-answers:
			for _, i := range voters {
				v, ok := a.votes[i]
				if !ok {
					v = voteMsg{Vote: voteNo, Reason: "no vote for the write"}
				}
				if step := lives[i].Vote(a.peer, v); step.Decide || step.Done {
					steps[i] = step
				}
			}
			if !open() {
				return frame, held
			}
		case <-voteCtx.Done():
			return frame, held
		}
	}
	return frame, held
}

// ndPrepareAt sends one peer the PREPARE-DELTA of the batch's voting
// writes and returns its final vote per write (index into batch) and
// whether it voted yes on all at the first asking it could read: a frame
// compressed against objects the peer lacks goes again plain; a write the
// peer lacks parents for is resent with its chain, or past the chain's
// bound after a pack of its objects.
func (c *Coordinator) ndPrepareAt(ctx context.Context, g, project, peer string, batch []*ndWrite, voters []int, frame []byte, plain func() ([]byte, error), timeout time.Duration) (map[int]voteMsg, bool) {
	out := make(map[int]voteMsg, len(voters))
	hdr := deltaHeader{From: c.cfg.Site, Txn: g, Project: project, TimeoutMS: wireTimeout(timeout)}
	var lacksBases bool
	ask := func(h deltaHeader, frame []byte, idx []int) map[int]deltaVote {
		lacksBases = false
		got := make(map[int]deltaVote, len(idx))
		msg, err := encodeDelta(deltaMsg{Header: h, Frame: frame}) // no versions: cannot fail
		var reply []byte
		if err == nil {
			reply, err = c.cfg.Mesh.Request(ctx, peer, kind.PrepareDelta, msg)
		}
		var m deltaVotesMsg
		reason := ""
		if errors.Is(err, transport.ErrNoHandler) {
			reason = "runs a release without the NoteDb fast path"
		} else if err != nil {
			reason = "unreachable: " + shortErr(err)
		} else if err := decode(reply, &m, (*deltaVotesMsg).check); err != nil {
			reason = err.Error()
		}
		if reason == "" && len(m.MissingBases) > 0 {
			lacksBases = true
			reason = fmt.Sprintf("lacks %d objects the frame is compressed against", len(m.MissingBases))
		}
		if reason != "" {
			for _, i := range idx {
				got[i] = deltaVote{Vote: voteNo, Reason: reason}
			}
			return got
		}
		byTxn := make(map[string]deltaVote, len(m.Votes))
		for _, v := range m.Votes {
			byTxn[v.Txn] = v
		}
		for _, i := range idx {
			v, ok := byTxn[batch[i].w.id]
			if !ok {
				v = deltaVote{Vote: voteNo, Reason: "no vote for the write"}
			}
			got[i] = v
		}
		return got
	}
	peerHaves := map[int][]string{} // what the peer has of a write's refs
	settle := func(got map[int]deltaVote) (missing []int) {
		for i, v := range got {
			if v.Vote == voteMissing {
				missing = append(missing, i)
				peerHaves[i] = slices.DeleteFunc(slices.Clone(v.Haves), func(id string) bool { return id == refmove.ZeroID })
				continue
			}
			out[i] = voteMsg{Vote: v.Vote, Reason: v.Reason}
		}
		slices.Sort(missing)
		return missing
	}

	got := ask(hdr, frame, voters)
	if lacksBases {
		// Behind the batch's old values: the plain frame, whose writes the
		// peer can read and vote on (missing parents go the chain's way).
		c.nd.resends.WithLabelValues("plain").Add(float64(len(voters)))
		if f, err := plain(); err == nil {
			got = ask(hdr, f, voters)
		}
	}
	clean := true
	for _, v := range got {
		clean = clean && v.Vote == voteYes
	}
	missing := settle(got)
	if len(missing) == 0 {
		return out, clean
	}
	// The chain back to what the peer has.
	var ds []notedbfast.Delta
	var chained, packed []int
	for _, i := range missing {
		v := got[i]
		haves := peerHaves[i]
		// Reads of the shared cat-file never run under a context that a
		// vote's end cancels: a cancelled read kills the process.
		objs, err := notedbfast.Chain(context.WithoutCancel(ctx), batch[i].repo.Objects, v.Missing, haves, ndChainLimits)
		if err != nil {
			c.log.Debug("chain for a peer", "peer", peer, "txn", batch[i].w.id, "error", err)
			packed = append(packed, i)
			continue
		}
		ds = append(ds, notedbfast.Delta{Project: project, Txn: batch[i].w.id, Objects: objs}, batch[i].delta())
		chained = append(chained, i)
		c.nd.resends.WithLabelValues("chain").Inc()
	}
	if len(ds) > 0 {
		f, err := c.nd.codec.Encode(ds...)
		if err != nil {
			packed = append(packed, chained...)
		} else {
			got = ask(hdr, f, chained)
			packed = append(packed, settle(got)...)
		}
	}
	if len(packed) == 0 {
		return out, false
	}
	// Past the chain's bound: a pack of the writes' objects not reachable
	// from what the peer has, into the batch's quarantine at the peer,
	// then the deltas without objects.
	slices.Sort(packed)
	c.nd.resends.WithLabelValues("pack").Add(float64(len(packed)))
	var wants, haves []string
	ds = ds[:0]
	for _, i := range packed {
		for _, u := range batch[i].w.updates {
			if u.New != refmove.ZeroID {
				wants = append(wants, u.New)
			}
		}
		haves = append(haves, peerHaves[i]...)
		d := batch[i].delta()
		d.Objects = nil
		ds = append(ds, d)
	}
	err := packsync.Ship(ctx, c.cfg.Mesh, kind.Pack, peer, batch[0].w.dir, packsync.Header{Project: project, Txn: g}, wants, c.ndPresent(context.WithoutCancel(ctx), batch[0].repo, haves))
	var f []byte
	if err == nil {
		f, err = c.nd.codec.Encode(ds...)
	}
	if err != nil {
		for _, i := range packed {
			out[i] = voteMsg{Vote: voteNo, Reason: "pack: " + err.Error()}
		}
		return out, false
	}
	h := hdr
	h.Pack = true
	for i, v := range ask(h, f, packed) {
		if v.Vote == voteMissing {
			v.Vote = voteNo
		}
		out[i] = voteMsg{Vote: v.Vote, Reason: v.Reason}
	}
	return out, false
}

// ndPresent keeps the ids the repository has (pack-objects refuses an
// unknown "not").
func (c *Coordinator) ndPresent(ctx context.Context, repo *git.Repo, ids []string) []string {
	infos, err := repo.Objects.Infos(ctx, ids)
	if err != nil {
		return nil // pack-objects then sends everything the wants reach
	}
	var out []string
	for i, in := range infos {
		if !in.Missing {
			out = append(out, ids[i])
		}
	}
	return out
}

// ndDecide takes the decision of the candidate writes: in submission order,
// runs of writes with disjoint refs go as one refdb CAS named g; a run that
// conflicts (or a write alone) goes one CAS per write, named by the write.
// It returns, per write, its versions, the txn the refdb records and its
// error.
func (c *Coordinator) ndDecide(ctx context.Context, g, project string, batch []*ndWrite, cands []int) (map[int][]Version, map[int]string, map[int]error) {
	vers := make(map[int][]Version, len(cands))
	txns := make(map[int]string, len(cands))
	errs := make(map[int]error, len(cands))
	crashed := false
	one := func(i int) {
		nw := batch[i]
		vs, _, err := c.cas(ctx, nw.w, nw.w.updates)
		if err != nil {
			errs[i] = err
			return
		}
		vers[i], txns[i] = vs, nw.w.id
	}
	groups := 0
	for _, run := range disjointRuns(batch, cands) {
		if len(run) == 1 {
			one(run[0])
			c.ndDecided(project, vers[run[0]], &crashed)
			continue
		}
		var ups []Update
		for _, i := range run {
			ups = append(ups, batch[i].w.updates...)
		}
		// The first group is named by the batch (the peers' journal entry);
		// a later one, which may touch a ref of an earlier one, by a name
		// of its own, so that reading back an unknown outcome cannot
		// mistake the earlier group's record for its own.
		id := g
		if groups++; groups > 1 {
			id = fmt.Sprintf("%s-%d", g, groups)
		}
		vs, _, err := c.cas(ctx, &write{id: id, project: project}, ups)
		if err != nil {
			if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrInvalid) {
				for _, i := range run {
					errs[i] = err
				}
				continue
			}
			// Someone else moved one of the refs: each write its own verdict.
			for _, i := range run {
				one(i)
				c.ndDecided(project, vers[i], &crashed)
			}
			continue
		}
		byRef := make(map[string]Version, len(vs))
		for _, v := range vs {
			byRef[v.Ref] = v
		}
		for _, i := range run {
			var mine []Version
			for _, u := range batch[i].w.updates {
				if v, ok := byRef[u.Ref]; ok {
					mine = append(mine, v)
				}
			}
			vers[i], txns[i] = mine, id
		}
		c.ndDecided(project, vs, &crashed)
	}
	return vers, txns, errs
}

// ndDecided records versions decided here; the first decision of a batch
// is the crash point of FaultAfterRefDBCommit.
func (c *Coordinator) ndDecided(project string, vs []Version, first *bool) {
	if len(vs) == 0 {
		return
	}
	if !*first {
		*first = true
		c.fault(FaultAfterRefDBCommit)
	}
	c.project(project).decided(vs)
}

// disjointRuns cuts cands, in order, into runs whose writes touch disjoint
// refs: a refdb batch may name a ref once.
func disjointRuns(batch []*ndWrite, cands []int) [][]int {
	var runs [][]int
	var run []int
	refs := map[string]bool{}
	for _, i := range cands {
		clash := false
		for _, u := range batch[i].w.updates {
			clash = clash || refs[u.Ref]
		}
		if clash {
			runs = append(runs, run)
			run, refs = nil, map[string]bool{}
		}
		run = append(run, i)
		for _, u := range batch[i].w.updates {
			refs[u.Ref] = true
		}
	}
	if len(run) > 0 {
		runs = append(runs, run)
	}
	return runs
}

// ndLocalCommit moves the refs of the decided writes here in one update-ref
// transaction (vers[i] are write i's refdb versions). A failure (a ref
// moved locally) leaves this site behind the refdb, which catch-up
// repairs; the writes stand.
func (c *Coordinator) ndLocalCommit(ctx context.Context, project string, batch []*ndWrite, decided []int, vers map[int][]Version) {
	at := map[string]int{}
	var all []Move
	for _, i := range decided {
		for _, m := range movesOf(batch[i].w.updates, vers[i], c.cfg.Site) {
			if k, ok := at[m.Ref]; ok {
				all[k].New, all[k].Version = m.New, m.Version // a later write of the batch moved it on
				continue
			}
			at[m.Ref] = len(all)
			all = append(all, m)
		}
	}
	all = slices.DeleteFunc(all, func(m Move) bool { return m.Old == m.New })
	p := c.project(project)
	repo := batch[decided[0]].repo
	ctx = context.WithoutCancel(ctx)
	p.apply.Lock()
	err := c.moveRefs(ctx, p, repo, Moved{Project: project, Own: true, Moves: all})
	if err != nil && len(decided) > 1 {
		// One write's ref moved here behind our back: the others still
		// get their local commit, one transaction each.
		err = nil
		for _, i := range decided {
			ev := Moved{Project: project, Txn: batch[i].w.id, Own: true, Moves: movesOf(batch[i].w.updates, vers[i], c.cfg.Site)}
			if e := c.moveRefs(ctx, p, repo, ev); e != nil && err == nil {
				err = e
			}
		}
	}
	p.apply.Unlock()
	if err != nil {
		c.log.Warn("local commit of decided writes failed; catching up", "project", project, "writes", len(decided), "error", err)
		c.kickCatchUp()
	}
}

// ndDeliver sends the COMMIT-DELTA of a decided batch to every peer of e
// (whose txn the caller marked in c.delivering), in the order of the
// project's batches per peer, and removes each peer from the outbound
// entry once it holds the batch. A peer that voted yes on every decided
// write gets the versions only, named by their place in its prepared entry
// (whose updates are entryUps) when it voted yes on every voting write at
// once; the others get the frame of the decided writes too, against the
// objects the writes build on for a few writes, the versions then named by
// their place in the frame. A peer that cannot read a named form (its
// entry is gone, it lacks the frame's bases) answers an error and gets the
// versions spelled out, without a frame: a peer lacking the bases lacks
// the commits the writes build on too, so its commit fetches the objects.
func (c *Coordinator) ndDeliver(e journal.Entry, vs []Version, ws []*ndWrite, decided []int, held map[string]*peerVotes, prepFrame []byte, entryUps []Update, queued <-chan struct{}) {
	ds := make([]notedbfast.Delta, len(ws))
	for k, nw := range ws {
		ds[k] = nw.delta()
	}
	type frameOf struct {
		frame []byte
		named []int // the versions in the frame, if it is based
	}
	frame := sync.OnceValues(func() (frameOf, error) {
		f, based := prepFrame, false
		if f != nil {
			ids, err := notedbfast.BaseIDs(f)
			based = err == nil && len(ids) > 0
		} else {
			var err error
			if f, based, err = c.ndFrame(context.Background(), ws[0].objects, ds); err != nil {
				return frameOf{}, err
			}
		}
		out := frameOf{frame: f}
		if based {
			if out.named = nameVersions(vs, updatesOf(ws)); out.named == nil {
				// Cannot happen (the versions are the writes'); spelled
				// out, the peer would not need the frame to commit.
				return frameOf{}, errors.New("versions not in the frame")
			}
		}
		return out, nil
	})
	plain := sync.OnceValues(func() ([]byte, error) { return c.nd.codec.Encode(ds...) })
	entryNamed := nameVersions(vs, entryUps)
	// Numbered in decision order per peer: the peer writes the objects of
	// successive batches in this order without the origin waiting for one
	// answer before sending the next (a round trip per batch).
	seqs := make(map[string]uint64, len(e.Peers))
	c.nd.mu.Lock()
	for _, p := range e.Peers {
		key := e.Project + "\x00" + p
		c.nd.seq[key]++
		seqs[p] = c.nd.seq[key]
	}
	c.nd.mu.Unlock()
	c.background(func(ctx context.Context) {
		defer c.delivering.Delete(e.Txn)
		c.sendAll(ctx, e, queued, func(ctx context.Context, p string) error {
			send := func(m deltaMsg) error {
				msg, err := encodeDelta(m)
				if err != nil {
					return err
				}
				_, err = c.cfg.Mesh.Request(ctx, p, kind.CommitDelta, msg)
				return err
			}
			full := deltaMsg{Header: deltaHeader{From: c.cfg.Site, Txn: e.Txn, Project: e.Project, Versions: vs, Seq: seqs[p]}}
			pv := held[p]
			if pv != nil {
				// A peer still preparing: its answer says whether it
				// needs the objects again.
				select {
				case <-pv.done:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			holds := pv != nil && holdsAll(pv.yes, decided)
			m, named, form := full, false, "versions"
			switch {
			case holds && pv.clean && entryNamed != nil:
				m.Header.Project, m.Header.Entry, m.Header.Named = "", len(entryUps), entryNamed
				named, form = true, "entry"
			case !holds:
				if f, err := frame(); err == nil {
					m.Frame, m.Header.Named, m.updates = f.frame, f.named, updatesOf(ws)
					named, form = f.named != nil, "frame"
					if named {
						form = "based"
					}
				} else if f, err := plain(); err == nil {
					m.Frame, m.updates, form = f, updatesOf(ws), "frame"
				}
			}
			c.nd.commits.WithLabelValues(form).Inc()
			err := send(m)
			var re *transport.RemoteError
			if named && errors.As(err, &re) && !errors.Is(err, transport.ErrNoHandler) {
				// Spelled out, the versions need neither the entry nor the
				// bases; without them the objects come from a fetch.
				c.log.Debug("named COMMIT-DELTA refused; spelling it out", "peer", p, "txn", e.Txn, "error", err)
				c.nd.commits.WithLabelValues("spelled").Inc()
				err = send(full)
			}
			if errors.Is(err, transport.ErrNoHandler) {
				// A release without the fast path: the plain COMMIT,
				// whose peer fetches the objects.
				_, err = c.cfg.Mesh.Request(ctx, p, kind.Commit, encode(commitMsg{Txn: e.Txn, Project: e.Project, Versions: vs}))
			}
			return err
		})
	})
}

func holdsAll(held map[int]bool, decided []int) bool {
	for _, i := range decided {
		if !held[i] {
			return false
		}
	}
	return true
}

// ndRelease tells peers that no write of batch g they prepared was decided.
// Best effort: a peer that misses it drops the entry at its deadline.
func (c *Coordinator) ndRelease(g, project string, peers []string) {
	msg, err := encodeDelta(deltaMsg{Header: deltaHeader{From: c.cfg.Site, Txn: g, Project: project}})
	if err != nil { // no versions: cannot happen
		c.log.Warn("release not encoded", "txn", g, "error", err)
		return
	}
	for _, p := range peers {
		c.background(func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, deliverTimeout)
			defer cancel()
			if _, err := c.cfg.Mesh.Request(ctx, p, kind.CommitDelta, msg); err != nil {
				c.log.Debug("release not delivered", "peer", p, "txn", g, "error", err)
			}
		})
	}
}

// commitDeltaObjects writes the objects of a COMMIT-DELTA's frame, if it
// has one, and resolves the versions that name its updates. A delta that
// cannot be applied, or a frame compressed against objects this site
// lacks, is left to the commit, which fetches what is still missing; the
// latter is an error only when versions name the frame's updates (the
// origin then spells them out).
func (c *Coordinator) commitDeltaObjects(ctx context.Context, m *deltaMsg) error {
	if len(m.Frame) == 0 {
		return nil
	}
	ds, err := c.decodeFrame(ctx, *m)
	var miss *notedbfast.MissingError
	if errors.As(err, &miss) && m.Header.Named == nil {
		c.log.Debug("frame against objects this site lacks; fetching", "txn", m.Header.Txn, "project", m.Header.Project, "missing", len(miss.IDs))
		return nil
	}
	if err != nil {
		return err
	}
	if m.Header.Named != nil {
		var ups []Update
		for _, d := range ds {
			ups = append(ups, fromFast(d.Updates)...)
		}
		if err := m.Header.resolve(ups); err != nil {
			return err
		}
	}
	dir, err := c.openForPeer(ctx, m.Header.Project)
	if err != nil {
		return err
	}
	for i, err := range c.nd.applier.ApplyBatch(ctx, dir, ds) {
		if err != nil {
			c.log.Debug("delta not applied", "txn", ds[i].Txn, "project", m.Header.Project, "error", err)
		}
	}
	return nil
}

// decodeFrame decodes the frame of a delta message from a peer, reading
// the objects a based frame is compressed against from the project here,
// and checks that every delta belongs to the message's project and is a
// sane write. A frame against objects this site lacks fails with a
// *notedbfast.MissingError.
func (c *Coordinator) decodeFrame(ctx context.Context, m deltaMsg) ([]notedbfast.Delta, error) {
	ds, err := c.nd.codec.DecodeBased(m.Frame, deltaFrameLimits, c.baseReader(ctx, m.Header.Project))
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.Project != m.Header.Project {
			return nil, fmt.Errorf("delta of project %q in a message of %q", d.Project, m.Header.Project)
		}
		if err := txn.Check(d.Txn); err != nil {
			return nil, err
		}
		if err := checkUpdates(fromFast(d.Updates)); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// baseReader reads the objects a based frame names from project's
// repository here, through its shared cat-file: a *notedbfast.MissingError
// names those it lacks.
func (c *Coordinator) baseReader(ctx context.Context, project string) func(ids []string) ([]notedbfast.Object, error) {
	return func(ids []string) ([]notedbfast.Object, error) {
		if !c.holds(project) {
			return nil, fmt.Errorf("project %q is not placed at site %s", project, c.cfg.Site)
		}
		repo, err := c.cfg.Repos.Open(project)
		if errors.Is(err, git.ErrNotFound) {
			return nil, &notedbfast.MissingError{IDs: ids}
		}
		if err != nil {
			return nil, err
		}
		// A cancelled read would kill the repository's shared cat-file.
		ctx := context.WithoutCancel(ctx)
		infos, err := repo.Objects.Infos(ctx, ids)
		if err != nil {
			return nil, err
		}
		var missing []string
		var size int64
		for i, in := range infos {
			if in.Missing {
				missing = append(missing, ids[i])
			}
			size += in.Size
		}
		if len(missing) > 0 {
			return nil, &notedbfast.MissingError{IDs: missing}
		}
		if size > notedbfast.MaxBaseBytes {
			return nil, fmt.Errorf("%d base objects of %d bytes exceed %d bytes", len(ids), size, notedbfast.MaxBaseBytes)
		}
		out := make([]notedbfast.Object, len(ids))
		for i, id := range ids {
			o, err := repo.Objects.Object(ctx, id)
			if errors.Is(err, git.ErrObjectMissing) {
				return nil, &notedbfast.MissingError{IDs: []string{id}}
			}
			if err != nil {
				return nil, err
			}
			t, err := notedbfast.ParseObjectType(o.Type)
			if err != nil {
				return nil, fmt.Errorf("base %s: %w", id, err)
			}
			out[i] = notedbfast.Object{Type: t, ID: id, Data: o.Data}
		}
		return out, nil
	}
}

// handlePrepareDelta is a peer's side of PREPARE-DELTA: write the objects
// of every delta that checks out, journal the batch once, vote per write.
// A frame compressed against objects this site lacks gets their ids
// instead of votes (it cannot tell which writes it holds).
func (c *Coordinator) handlePrepareDelta(ctx context.Context, from string, payload []byte) ([]byte, error) {
	m, err := decodeDelta(payload, from)
	if err != nil {
		return nil, err
	}
	if len(m.Frame) == 0 {
		return nil, errors.New("prepare without a delta frame")
	}
	if m.Header.Entry > 0 || m.Header.Named != nil || len(m.Header.Versions) > 0 {
		return nil, errors.New("prepare with versions")
	}
	ds, err := c.decodeFrame(ctx, m)
	var miss *notedbfast.MissingError
	if errors.As(err, &miss) {
		return encode(deltaVotesMsg{MissingBases: miss.IDs}), nil
	}
	if err != nil {
		return nil, err
	}
	votes := c.prepareDelta(ctx, from, m.Header, ds)
	return encode(deltaVotesMsg{Votes: votes}), nil
}

func (c *Coordinator) prepareDelta(ctx context.Context, from string, h deltaHeader, ds []notedbfast.Delta) []deltaVote {
	// The origin stops listening once its rule holds; the objects are
	// still worth storing (the next batch builds on them), and a cancelled
	// read would kill the repository's shared cat-file.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), prepareTimeout(h.TimeoutMS))
	defer cancel()
	var votes []deltaVote
	all := func(vote, reason string) []deltaVote {
		for _, d := range ds {
			if len(d.Updates) > 0 {
				votes = append(votes, deltaVote{Txn: d.Txn, Vote: vote, Reason: reason})
			}
		}
		return votes
	}
	dir, err := c.openForPeer(ctx, h.Project)
	if err != nil {
		return all(voteNo, err.Error())
	}
	if h.Pack {
		// The origin shipped a pack for what a chain could not carry:
		// index-pack --strict checked it; move it in before the deltas.
		err := c.waitPack(ctx, h.Txn)
		if err == nil {
			err = c.migrate(dir, h.Txn)
		}
		c.recv.Forget(h.Txn)
		if err != nil {
			return all(voteNo, "pack: "+err.Error())
		}
	}
	errs := c.nd.applier.ApplyBatch(ctx, dir, ds)
	var ok []notedbfast.Update
	var repo *git.Repo
	for i, d := range ds {
		if len(d.Updates) == 0 {
			continue // a chain: its outcome shows in the write after it
		}
		var miss *notedbfast.MissingError
		switch {
		case errs[i] == nil:
			votes = append(votes, deltaVote{Txn: d.Txn, Vote: voteYes})
			ok = append(ok, d.Updates...)
		case errors.As(errs[i], &miss):
			v := deltaVote{Txn: d.Txn, Vote: voteMissing, Reason: errs[i].Error(), Missing: miss.IDs}
			if repo == nil {
				repo, _ = c.cfg.Repos.Open(h.Project)
			}
			if repo != nil {
				refs := make([]string, len(d.Updates))
				for k, u := range d.Updates {
					refs[k] = u.Ref
				}
				curs, _ := c.localRefs(ctx, repo, refs) // haves only narrow what is sent
				for _, cur := range curs {
					if cur != refmove.ZeroID {
						v.Haves = append(v.Haves, cur)
					}
				}
			}
			votes = append(votes, v)
		default:
			votes = append(votes, deltaVote{Txn: d.Txn, Vote: voteNo, Reason: errs[i].Error()})
		}
	}
	if len(ok) == 0 {
		return votes
	}
	// One journal entry per batch; a second round of the same batch (a
	// chain, a pack) adds its writes to it.
	now := time.Now()
	e := journal.Entry{Txn: h.Txn, Project: h.Project, Origin: from, Prepared: now, Deadline: prepareDeadline(now, h.TimeoutMS)}
	if old, err := c.prepared.Get(h.Txn); err == nil && old.Project == h.Project {
		e.Updates = old.Updates
	}
	for _, u := range ok {
		e.Updates = append(e.Updates, journal.Update{Ref: u.Ref, Old: u.Old, New: u.New})
	}
	// Volatile: the objects are in the object store already (fsynced), and
	// a peer that lost this entry to a power failure moves the refs by
	// catch-up from the refdb at its start, which is what resolving the
	// entry would do.
	if err := c.prepared.PutVolatile(e); err != nil {
		for i := range votes {
			if votes[i].Vote == voteYes {
				votes[i] = deltaVote{Txn: votes[i].Txn, Vote: voteNo, Reason: err.Error()}
			}
		}
	}
	return votes
}

// handleCommitDelta is a peer's side of COMMIT-DELTA: write the objects of
// the frame, if any, then commit the batch like any decided write (refs
// only move forward; what is still missing is fetched from the origin). No
// versions means nothing of the batch was decided: forget it.
func (c *Coordinator) handleCommitDelta(ctx context.Context, from string, payload []byte) ([]byte, error) {
	m, err := decodeDelta(payload, from)
	if err != nil {
		return nil, err
	}
	if m.Header.Entry > 0 {
		if err := c.fromEntry(from, &m.Header); err != nil {
			return nil, err
		}
	}
	if !c.holds(m.Header.Project) {
		return nil, fmt.Errorf("project %q is not placed at site %s", m.Header.Project, c.cfg.Site)
	}
	if len(m.Header.Versions) == 0 {
		if err := c.prepared.Remove(m.Header.Txn); err != nil {
			return nil, err
		}
		return []byte("ok"), nil
	}
	start := time.Now()
	done := c.nd.turn(ctx, from, m.Header.Project, m.Header.Seq)
	err = c.commitDeltaObjects(ctx, &m)
	done()
	if err == nil && m.Header.Named != nil {
		err = errors.New("versions name the updates of an absent frame")
	}
	if err != nil {
		return nil, err
	}
	if err := c.commit(ctx, m.Header.Project, m.Header.Txn, m.Header.Versions, false, []string{from}); err != nil {
		c.log.Warn("commit failed; catching up", "txn", m.Header.Txn, "project", m.Header.Project, "origin", from, "error", err)
		c.kickCatchUp()
		return nil, err
	}
	c.metrics.applyLatency.Observe(time.Since(start).Seconds())
	return []byte("ok"), nil
}

// errNoEntry is a peer's answer to a COMMIT-DELTA whose versions name the
// updates of a prepared entry it does not hold (anymore): the origin
// spells them out.
var errNoEntry = errors.New("no prepared entry of the batch")

// fromEntry resolves a COMMIT-DELTA's versions, and its project, from the
// batch's prepared entry here.
func (c *Coordinator) fromEntry(from string, h *deltaHeader) error {
	e, err := c.prepared.Get(h.Txn)
	switch {
	case err != nil:
		return fmt.Errorf("%w %s: %v", errNoEntry, h.Txn, err)
	case e.Origin != from || len(e.Updates) != h.Entry:
		return fmt.Errorf("%w %s from %s with %d updates (have one from %s with %d)", errNoEntry, h.Txn, from, h.Entry, e.Origin, len(e.Updates))
	}
	if err := git.ValidateName(e.Project); err != nil {
		return err
	}
	ups := make([]Update, len(e.Updates))
	for i, u := range e.Updates {
		ups[i] = Update{Ref: u.Ref, Old: u.Old, New: u.New}
	}
	h.Project, h.Entry = e.Project, 0
	return h.resolve(ups)
}
