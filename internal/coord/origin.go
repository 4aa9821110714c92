package coord

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/hook"
	"github.com/sitesync/sitesync/internal/journal"
	"github.com/sitesync/sitesync/internal/kind"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/txn"
	"github.com/sitesync/sitesync/packsync"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/transport"
)

// Outcomes a caller branches on.
var (
	// ErrConflict: a ref was not at the value the write expected; returned
	// as a *ConflictError.
	ErrConflict = errors.New("conflict")
	// ErrNoQuorum: the write's ack rule did not hold in time; returned as a
	// *QuorumError. Nothing changed.
	ErrNoQuorum = errors.New("ack rule not met")
	// ErrInvalid: the write itself is wrong (a bad ref, a rewrite of a
	// create-only ref, objects that are not here).
	ErrInvalid = errors.New("invalid write")
	// ErrUnavailable: the refdb could not decide the write. Nothing is
	// acknowledged.
	ErrUnavailable = errors.New("refdb unavailable")
)

// ConflictError names the refs that moved under a write and where.
type ConflictError struct {
	Project string
	Refs    []refdb.RefConflict
}

func (e *ConflictError) Is(t error) bool { return t == ErrConflict }

func (e *ConflictError) Error() string {
	var parts []string
	for _, r := range e.Refs {
		cur := r.Current
		where := "at site " + cur.Site
		if cur.Site == "" {
			where = "at another site"
		}
		switch {
		case cur.Version == 0:
			parts = append(parts, fmt.Sprintf("%s does not exist", r.Ref))
		case !cur.Exists():
			parts = append(parts, fmt.Sprintf("%s was deleted %s", r.Ref, where))
		default:
			parts = append(parts, fmt.Sprintf("%s was updated %s", r.Ref, where))
		}
	}
	return strings.Join(parts, "; ") + "; fetch and retry"
}

// QuorumError says how far a write's votes got.
type QuorumError struct {
	Summary string // "1 of 2 required sites answered; site c: …"
	Timeout time.Duration
}

func (e *QuorumError) Is(t error) bool { return t == ErrNoQuorum }

func (e *QuorumError) Error() string {
	head, rest, _ := strings.Cut(e.Summary, ";")
	msg := fmt.Sprintf("quorum not reached: %s within %s", head, e.Timeout)
	if rest != "" {
		msg += ";" + rest
	}
	return msg
}

// Result is an acknowledged write.
type Result struct {
	Txn  string
	Acks []string // sites that hold it (async: the origin)
	// Versions are the refdb versions the write created.
	Versions []Version
	// Refused names the refs of a per-ref write (a non-atomic push) that
	// were not decided, with why; the others are in Versions.
	Refused map[string]error
}

// write is one write transaction at its origin.
type write struct {
	id      string
	project string
	policy  Policy
	dir     string // the repository
	tee     *packsync.Tee
	ship    bool // no tee: ship a pack to each peer
	push    bool // a push through the front door
	// perRef: each ref is decided on its own (a non-atomic push, git's
	// per-ref semantics); otherwise the write is all or nothing.
	perRef bool

	mu      sync.Mutex
	updates []Update
	ships   map[string]chan error // per peer: the pack shipped to it, once
	stopGit context.CancelFunc    // ends the push's receive-pack (Push.Context)

	once sync.Once
	err  error  // the decision's outcome, once decided
	res  Result // the decision, when err is nil
}

// localWrite is a write whose objects are in the repository at dir: each
// peer gets them as a pack built for it.
func (c *Coordinator) localWrite(project, dir string, ups []Update) *write {
	return &write{id: txn.New(c.cfg.Site, time.Now()), project: project, policy: c.policy(project), dir: dir, ship: true, updates: ups}
}

// decide runs a write to its decision: votes under its rule, then the
// refdb compare-and-set of every guarded ref. It is called once per write.
func (c *Coordinator) decide(ctx context.Context, w *write) (Result, error) {
	start := time.Now()
	ups := w.updatesCopy()
	if err := validateWrite(ups, nil); err != nil {
		return Result{}, err
	}
	if err := c.tooLarge(w, ups); err != nil {
		return Result{}, err
	}
	pol := w.policy
	peers := c.peersOf(pol)
	t := newOriginTxn(c.cfg.Site, pol, peers)

	voteCtx, cancel := context.WithTimeout(ctx, pol.Timeout)
	// No vote outlives the decision: the votes still out when the rule
	// holds (or cannot) are cancelled and waited for. A pack being shipped
	// to a slow peer goes on in the background (shipOnce), owned by Run.
	var voting sync.WaitGroup
	defer func() {
		cancel()
		voting.Wait()
	}()
	type vote struct {
		site string
		msg  voteMsg
	}
	votes := make(chan vote, len(peers))
	var (
		vs      []Version
		refused map[string]error
	)
	step := t.Start()
	for !step.Done {
		for _, p := range step.Prepare {
			voting.Go(func() { votes <- vote{p, c.prepareAt(voteCtx, w, p, ups)} })
		}
		switch {
		case step.Decide:
			var err error
			vs, refused, err = c.cas(ctx, w, ups)
			step = t.Decided(err)
		default:
			select {
			case v := <-votes:
				step = t.Vote(v.site, v.msg)
			case <-voteCtx.Done():
				step = t.Timeout()
			}
		}
	}
	if len(step.Abort) > 0 {
		c.abortAt(w, step.Abort)
	}
	c.catchUpConflicts(w.project, step.Err, refused)
	if step.Err != nil {
		c.metrics.writes.WithLabelValues(outcome(step.Err)).Inc()
		return Result{}, step.Err
	}
	c.fault(FaultAfterRefDBCommit)
	c.project(w.project).decided(vs)
	c.metrics.writes.WithLabelValues("ok").Inc()
	c.metrics.decideLatency.WithLabelValues(pol.Mode).Observe(time.Since(start).Seconds())

	// The decision stands; peers learn of it through the durable queue.
	if len(step.Queue) > 0 {
		e := decidedEntry(w.id, w.project, c.cfg.Site, step.Queue, vs, time.Now())
		if err := c.outbound.Put(e); err != nil {
			c.log.Error("outbound queue", "txn", w.id, "error", err)
		}
		c.deliver(e, w, step.Acks)
	}
	return Result{Txn: w.id, Acks: step.Acks, Versions: vs, Refused: refused}, nil
}

// outcome is the metric label of a write that failed with err.
func outcome(err error) string {
	switch {
	case errors.Is(err, ErrNoQuorum):
		return "no_quorum"
	case errors.Is(err, ErrConflict):
		return "conflict"
	}
	return "error"
}

func (w *write) updatesCopy() []Update {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.updates)
}

// prepareAt asks one peer to prepare the write and returns its vote. A peer
// missing objects gets a pack and is asked again, once.
func (c *Coordinator) prepareAt(ctx context.Context, w *write, peer string, ups []Update) voteMsg {
	msg := prepareMsg{Txn: w.id, Project: w.project, Updates: ups, TimeoutMS: wireTimeout(w.policy.Timeout)}
	var shipped <-chan error
	switch {
	case w.tee != nil:
		msg.Pack = true
	case w.ship && hasObjects(ups):
		msg.Pack = true
		shipped = c.shipOnce(w, peer, ups)
	}
	v := c.askVote(ctx, peer, msg)
	if v.Vote != voteMissing {
		return v
	}
	if shipped == nil {
		// The tee did not deliver to this peer; ship from the repository.
		// (w.tee stays: the other peers' votes read it concurrently.)
		shipped = c.shipOnce(w, peer, ups)
	}
	select {
	case err := <-shipped:
		if err != nil {
			return voteMsg{Vote: voteNo, Reason: err.Error()}
		}
	case <-ctx.Done():
		return voteMsg{Vote: voteNo, Reason: "no answer in time"}
	}
	msg.Pack = true
	v = c.askVote(ctx, peer, msg)
	if v.Vote == voteMissing {
		v.Vote = voteNo
	}
	return v
}

// shipOnce ships the write's pack to peer unless that was started already,
// and returns a channel that yields its outcome (and is then closed). The
// shipment outlives the vote: a peer that was too slow to vote still gets
// the objects for the commit.
func (c *Coordinator) shipOnce(w *write, peer string, ups []Update) <-chan error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ships == nil {
		w.ships = make(map[string]chan error)
	}
	if ch, ok := w.ships[peer]; ok {
		return ch
	}
	ch := make(chan error, 1)
	w.ships[peer] = ch
	c.background(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, deliverTimeout)
		defer cancel()
		err := c.shipTo(ctx, w, peer, ups)
		ch <- err
		close(ch)
	})
	return ch
}

func (c *Coordinator) askVote(ctx context.Context, peer string, msg prepareMsg) voteMsg {
	reply, err := c.cfg.Mesh.Request(ctx, peer, kind.Prepare, encode(msg))
	if err != nil {
		return voteMsg{Vote: voteNo, Reason: "unreachable: " + shortErr(err)}
	}
	var v voteMsg
	if err := decode(reply, &v, (*voteMsg).check); err != nil {
		return voteMsg{Vote: voteNo, Reason: err.Error()}
	}
	return v
}

func shortErr(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return err.Error()
}

// shipTo sends peer a pack of the write's new objects.
func (c *Coordinator) shipTo(ctx context.Context, w *write, peer string, ups []Update) error {
	var wants, haves []string
	for _, u := range ups {
		wants = append(wants, u.New)
		haves = append(haves, u.Old)
	}
	return packsync.Ship(ctx, c.cfg.Mesh, kind.Pack, peer, w.dir, packsync.Header{Project: w.project, Txn: w.id}, wants, haves)
}

func hasObjects(ups []Update) bool {
	for _, u := range ups {
		if u.New != refmove.ZeroID {
			return true
		}
	}
	return false
}

// cas takes the decision in the refdb over every guarded ref of the write.
// A write that must be all or nothing is one refdb transaction (decide
// refuses one larger than the backend takes, tooLarge). A per-ref write (a
// non-atomic push) is decided as git decides one: in batches of at most
// the backend's limit, each all or nothing; a ref of a batch that
// conflicts is refused alone and the rest of its batch tried again.
// refused names the refs of a per-ref write that were not decided, with
// why; the write fails (err) only when none was. An unknown outcome (the
// refdb went away mid-call) is resolved by reading the refs back.
func (c *Coordinator) cas(ctx context.Context, w *write, ups []Update) (vs []Version, refused map[string]error, err error) {
	var todo []refdb.Update
	for _, u := range ups {
		if c.cfg.Guarded(u.Ref) {
			todo = append(todo, refdb.Update{Ref: u.Ref, Old: u.Old, New: u.New})
		}
	}
	if !w.perRef {
		vs, err := c.casBatch(ctx, w, todo)
		return vs, nil, err
	}
	limit := refdb.BatchLimit(c.cfg.Store)
	refused = make(map[string]error)
	for len(todo) > 0 {
		batch := todo[:min(limit, len(todo))]
		got, err := c.casBatch(ctx, w, batch)
		var conflict *ConflictError
		switch {
		case err == nil:
			vs = append(vs, got...)
			todo = todo[len(batch):]
		case errors.As(err, &conflict):
			bad := make(map[string]bool, len(conflict.Refs))
			for _, r := range conflict.Refs {
				bad[r.Ref] = true
				refused[r.Ref] = &ConflictError{Project: w.project, Refs: []refdb.RefConflict{r}}
			}
			todo = slices.DeleteFunc(todo, func(u refdb.Update) bool { return bad[u.Ref] })
		case len(vs) == 0:
			// Nothing decided yet and the refdb cannot decide (or the
			// batch is wrong): the write fails whole, saying why (an
			// unknown outcome must not read as a refusal).
			return nil, nil, err
		default:
			// The same after some batches were decided: what is left is
			// refused with that reason, not tried batch by batch.
			for _, u := range todo {
				refused[u.Ref] = err
			}
			todo = nil
		}
	}
	if len(vs) == 0 && len(refused) > 0 {
		return nil, nil, joinRefused(w.project, refused)
	}
	return vs, refused, nil
}

// joinRefused is the error of a per-ref write none of whose refs was
// decided: the conflicts together when every ref conflicted, else the
// first other reason (by ref name).
func joinRefused(project string, refused map[string]error) error {
	refs := slices.Sorted(maps.Keys(refused))
	all := &ConflictError{Project: project}
	for _, r := range refs {
		var ce *ConflictError
		if !errors.As(refused[r], &ce) {
			return refused[r]
		}
		all.Refs = append(all.Refs, ce.Refs...)
	}
	return all
}

// casBatch decides updates in one refdb transaction.
func (c *Coordinator) casBatch(ctx context.Context, w *write, updates []refdb.Update) ([]Version, error) {
	if len(updates) == 0 {
		return nil, nil
	}
	b := refdb.Batch{Txn: w.id, Site: c.cfg.Site, Updates: slices.Clone(updates)}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refdbTimeout)
	defer cancel()
	recs, err := c.cfg.Store.CAS(cctx, w.project, b)
	var conflict *refdb.ConflictError
	if errors.As(err, &conflict) && adopt(&b, conflict) {
		recs, err = c.cfg.Store.CAS(cctx, w.project, b)
	}
	switch {
	case err == nil:
	case errors.As(err, &conflict):
		return nil, &ConflictError{Project: w.project, Refs: conflict.Refs}
	case errors.Is(err, refdb.ErrInvalid):
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	default:
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refdbTimeout)
		defer cancel()
		got, rerr := c.cfg.Store.Get(rctx, w.project, refsOf(b.Updates)...)
		if rerr != nil || len(got) == 0 || got[0].Txn != w.id {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		recs = got
	}
	vs := make([]Version, len(recs))
	for i, r := range recs {
		vs[i] = Version{Ref: r.Ref, Value: r.Value, Version: r.Version, Site: r.Site}
	}
	return vs, nil
}

// catchUpConflicts brings this site, in the background, to the refdb's
// values of the refs a write lost to another site's (err, refused): the
// user is told to fetch and retry, and the fetch must then see them. The
// refs of the write still in flight are applied once it ends.
func (c *Coordinator) catchUpConflicts(project string, err error, refused map[string]error) {
	var vs []Version
	var from []string
	add := func(err error) {
		var ce *ConflictError
		if !errors.As(err, &ce) {
			return
		}
		for _, r := range ce.Refs {
			if r.Current.Version > 0 {
				vs = append(vs, versionOf(r.Current))
				from = union(from, []string{r.Current.Site})
			}
		}
	}
	add(err)
	for _, e := range refused {
		add(e)
	}
	if len(vs) == 0 {
		return
	}
	c.background(func(ctx context.Context) {
		if err := c.applyVersions(ctx, project, vs, from); err != nil {
			c.log.Debug("catching up refs a write lost", "project", project, "refs", len(vs), "error", err)
			c.kickCatchUp()
		}
	})
}

// tooLarge refuses, before anything is prepared, an all-or-nothing write
// of more guarded refs than one refdb transaction of the backend takes.
func (c *Coordinator) tooLarge(w *write, ups []Update) error {
	if w.perRef {
		return nil
	}
	n := 0
	for _, u := range ups {
		if c.cfg.Guarded(u.Ref) {
			n++
		}
	}
	limit := refdb.BatchLimit(c.cfg.Store)
	if n <= limit {
		return nil
	}
	what, remedy := "write", "send it as several writes"
	if w.push {
		what, remedy = "atomic push", "push without --atomic (each ref is then decided on its own)"
	}
	return fmt.Errorf("%w: %s of %d refs: the refdb decides at most %d refs in one transaction (refdb.max_txn_ops, the etcd servers' --max-txn-ops); %s, or raise both limits",
		ErrInvalid, what, n, limit, remedy)
}

// adopt handles the first write of refs the refdb has never seen (version
// 0): refs that existed in the repositories before sitesync guarded them.
// The origin holds the old value the write expects (git checked it under
// the ref lock), so the refdb adopts the ref by creating it. It reports
// whether b changed and is worth trying again: only when every conflicting
// ref is such a ref.
func adopt(b *refdb.Batch, conflict *refdb.ConflictError) bool {
	unseen := make(map[string]bool)
	for _, r := range conflict.Refs {
		if r.Current.Version != 0 {
			return false
		}
		unseen[r.Ref] = true
	}
	changed := false
	for i, u := range b.Updates {
		if unseen[u.Ref] && u.Old != refmove.ZeroID {
			b.Updates[i].Old = refmove.ZeroID
			changed = true
		}
	}
	return changed
}

func refsOf(ups []refdb.Update) []string {
	out := make([]string, len(ups))
	for i, u := range ups {
		out[i] = u.Ref
	}
	return out
}

// abortAt tells peers to drop what the write left with them. Best effort:
// a peer that misses it aborts on its own at its deadline.
func (c *Coordinator) abortAt(w *write, peers []string) {
	if w.tee != nil {
		w.tee.Abort()
	}
	msg := encode(abortMsg{Txn: w.id, Project: w.project})
	for _, p := range peers {
		c.background(func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, deliverTimeout)
			defer cancel()
			if _, err := c.cfg.Mesh.Request(ctx, p, kind.Abort, msg); err != nil {
				c.log.Debug("abort not delivered", "peer", p, "txn", w.id, "error", err)
			}
		})
	}
}

// deliver sends a decided write to every peer of the outbound entry e and
// removes each peer from the entry once it holds the write. w is the live
// write (nil when redelivering after a restart); voters already hold the
// objects.
func (c *Coordinator) deliver(e journal.Entry, w *write, voters []string) {
	if _, busy := c.delivering.LoadOrStore(e.Txn, struct{}{}); busy {
		return
	}
	c.background(func(ctx context.Context) {
		defer c.delivering.Delete(e.Txn)
		var vs []Version
		var ups []Update
		for _, u := range e.Updates {
			vs = append(vs, Version{Ref: u.Ref, Value: u.New, Version: u.Version, Site: e.Origin})
			ups = append(ups, Update{Ref: u.Ref, Old: refmove.ZeroID, New: u.New})
		}
		c.sendAll(ctx, e, nil, func(ctx context.Context, p string) error {
			msg := commitMsg{Txn: e.Txn, Project: e.Project, Versions: vs}
			if w != nil && !slices.Contains(voters, p) {
				switch {
				case w.tee != nil:
					msg.Pack = true
				case w.ship && hasObjects(ups):
					// The peer fetches what it lacks if this fails.
					msg.Pack = true
					c.shipOnce(w, p, w.updatesCopy())
				}
			}
			_, err := c.cfg.Mesh.Request(ctx, p, kind.Commit, encode(msg))
			return err
		})
	})
}

// sendAll calls send for every peer of the outbound entry e at once, each
// bounded by deliverTimeout, then removes from the entry the peers it
// reached; the entry goes when none is left. queued, if not nil, is closed
// once the entry is in the queue: the bookkeeping waits for it.
func (c *Coordinator) sendAll(ctx context.Context, e journal.Entry, queued <-chan struct{}, send func(ctx context.Context, peer string) error) {
	var mu sync.Mutex
	var done []string
	var wg sync.WaitGroup
	for _, p := range e.Peers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, deliverTimeout)
			defer cancel()
			if err := send(ctx, p); err != nil {
				var refused *transport.RemoteError
				if !errors.As(err, &refused) {
					c.log.Debug("commit not delivered yet", "peer", p, "txn", e.Txn, "error", err)
					return
				}
				// The peer heard of the decision and could not apply it: its
				// own catch-up has the write now (and reports it if it stays
				// stuck). Redelivering the same message would only fail again.
				c.log.Warn("a peer could not apply a decided write; left to its catch-up", "peer", p, "txn", e.Txn, "project", e.Project, "error", err)
			}
			mu.Lock()
			done = append(done, p)
			mu.Unlock()
		})
	}
	wg.Wait()
	if queued != nil {
		<-queued
	}
	rest := slices.DeleteFunc(slices.Clone(e.Peers), func(p string) bool { return slices.Contains(done, p) })
	if len(rest) == 0 {
		c.retries.done(e.Txn)
		if err := c.outbound.Remove(e.Txn); err != nil {
			c.log.Error("outbound queue", "txn", e.Txn, "error", err)
		}
		return
	}
	c.retries.failed(e.Txn, time.Now())
	e.Peers = rest
	// Not fsynced: lost to a power failure, the entry names every peer
	// again, and delivering twice is harmless.
	if err := c.outbound.PutVolatile(e); err != nil {
		c.log.Error("outbound queue", "txn", e.Txn, "error", err)
	}
}

// redeliver retries the outbound queue for the connected peers (or one
// peer that just connected). A peer that stays away catches up on its own
// when it is back; the queue only makes that faster.
func (c *Coordinator) redeliver(ctx context.Context, peer string) {
	entries, err := c.outbound.List()
	if err != nil {
		c.log.Error("read the outbound queue", "error", err)
	}
	if len(entries) == 0 {
		return
	}
	up := make(map[string]bool)
	for _, st := range c.cfg.Mesh.Peers() {
		up[st.Name] = st.Connected && (peer == "" || st.Name == peer)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Prepared.Before(entries[j].Prepared) })
	now := time.Now()
	for _, e := range entries {
		// A peer that just came back is tried at once; otherwise an entry
		// that failed waits its backoff.
		if slices.ContainsFunc(e.Peers, func(p string) bool { return up[p] }) && (peer != "" || c.retries.due(e.Txn, now)) {
			c.deliver(e, nil, nil)
		}
	}
}

// redeliverFirst and redeliverMost bound the backoff of an outbound entry
// whose delivery failed to a connected peer: a second, doubling to 8 s. A
// peer that reconnects is tried at once, but its reconnection may come
// while a delivery to it is still failing (it went away again): the
// entry's next try is then at most redeliverMost away. (A minute there
// left a peer that flapped 30 times behind for over 30 s.)
const (
	redeliverFirst = time.Second
	redeliverMost  = 8 * time.Second
)

// retries is the backoff of outbound entries whose delivery failed. Safe for
// concurrent use.
type retries struct {
	mu    sync.Mutex
	state map[string]retry // by txn
}

type retry struct {
	failures int
	next     time.Time
}

func (r *retries) failed(txn string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		r.state = make(map[string]retry)
	}
	st := r.state[txn]
	st.failures++
	st.next = now.Add(backoff(st.failures, redeliverFirst, redeliverMost))
	r.state[txn] = st
}

func (r *retries) done(txn string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.state, txn)
}

func (r *retries) due(txn string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !now.Before(r.state[txn].next)
}

// Write is the local write API: move refs whose objects are already in this
// site's repository, under the project's rule.
func (c *Coordinator) Write(ctx context.Context, project string, ups []Update) (Result, error) {
	if err := notReserved(ups); err != nil {
		return Result{}, err
	}
	return c.write(ctx, project, ups)
}

// write is Write without the check that keeps callers out of sitesync's
// own refs.
func (c *Coordinator) write(ctx context.Context, project string, ups []Update) (Result, error) {
	repo, err := c.cfg.Repos.Open(project)
	if err != nil {
		return Result{}, err
	}
	var types []string
	if slices.ContainsFunc(ups, func(u Update) bool { return strings.HasPrefix(u.Ref, "refs/heads/") }) {
		if types, err = c.objectTypes(ctx, repo, ups); err != nil {
			return Result{}, err
		}
	}
	if err := validateWrite(ups, types); err != nil {
		return Result{}, err
	}
	if res, fast, err := c.writeNoteDB(ctx, project, repo, ups); fast {
		return res, err // the NoteDb fast path (notedb.go)
	}
	if types == nil {
		if types, err = c.objectTypes(ctx, repo, ups); err != nil {
			return Result{}, err
		}
		if err := validateWrite(ups, types); err != nil {
			return Result{}, err
		}
	}
	if err := c.gitWouldTake(ctx, repo, ups); err != nil {
		return Result{}, err
	}
	w := c.localWrite(project, repo.Dir, ups)
	p := c.project(project)
	p.begin(w.id, ups)
	defer p.end(w.id)
	res, err := c.decide(ctx, w)
	if err != nil {
		return Result{}, err
	}
	c.commitHere(ctx, p, repo, w.id, ups, res)
	return res, nil
}

// commitHere moves the refs of a write decided at this site whose objects
// are here (an API write, a delete). A failure (a ref moved locally)
// leaves this site behind the refdb, which catch-up repairs; the write
// itself stands.
func (c *Coordinator) commitHere(ctx context.Context, p *project, repo *git.Repo, id string, ups []Update, res Result) {
	ups = slices.DeleteFunc(slices.Clone(ups), func(u Update) bool { return res.Refused[u.Ref] != nil })
	p.apply.Lock()
	err := c.moveRefs(context.WithoutCancel(ctx), p, repo, Moved{Project: p.name, Txn: id, Own: true, Moves: movesOf(ups, res.Versions, c.cfg.Site)})
	p.apply.Unlock()
	if err != nil {
		c.log.Warn("local commit of a decided write failed; catching up", "project", p.name, "txn", id, "error", err)
		c.kickCatchUp()
	}
}

// gitWouldTake asks git whether it would move the refs of ups here (a ref
// that is a directory of another, say), without moving them: a write the
// refdb takes must be one every site can apply. Old values are left to the
// refdb, which answers a stale one with a conflict.
func (c *Coordinator) gitWouldTake(ctx context.Context, repo *git.Repo, ups []Update) error {
	gu := make([]git.RefUpdate, len(ups))
	for i, u := range ups {
		gu[i] = git.RefUpdate{Ref: u.Ref, New: u.New}
	}
	err := git.CheckRefUpdates(ctx, repo.Dir, []string{hook.EnvApplying + "=1"}, gu)
	var gerr *git.Error
	if errors.As(err, &gerr) && gerr.Stderr != "" {
		return fmt.Errorf("%w: git refuses it: %s", ErrInvalid, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(gerr.Stderr), "fatal: ")))
	}
	return err
}

// movesOf is the moves of a write's updates decided at site, with the
// versions the refdb gave them.
func movesOf(ups []Update, vs []Version, site string) []Move {
	version := make(map[string]uint64, len(vs))
	for _, v := range vs {
		version[v.Ref] = v.Version
	}
	moves := make([]Move, 0, len(ups))
	for _, u := range ups {
		if u.Old != u.New {
			moves = append(moves, Move{Ref: u.Ref, Old: u.Old, New: u.New, Version: version[u.Ref], Site: site})
		}
	}
	return moves
}

// objectTypes is the type of each update's new object in repo ("" for a
// deletion, missingType for an object that is not there), asked of the
// repository's long-lived cat-file in one exchange. Objects present are
// complete: the repository holds only complete histories.
func (c *Coordinator) objectTypes(ctx context.Context, repo *git.Repo, ups []Update) ([]string, error) {
	var ids []string
	for _, u := range ups {
		if u.New != refmove.ZeroID {
			ids = append(ids, u.New)
		}
	}
	types := make([]string, len(ups))
	if len(ids) == 0 {
		return types, nil
	}
	// A cancelled read would kill the shared cat-file; these are short.
	infos, err := repo.Objects.Infos(context.WithoutCancel(ctx), ids)
	if err != nil {
		return nil, fmt.Errorf("read the new objects: %w", err)
	}
	k := 0
	for i, u := range ups {
		if u.New == refmove.ZeroID {
			continue
		}
		types[i] = infos[k].Type
		if infos[k].Missing {
			types[i] = missingType
		}
		k++
	}
	return types, nil
}

// CreateProject creates the project's repository here and at every other
// placement site, HEAD at the branch head ("": Config.DefaultHead). It
// returns whether it was created here, and the sites that could not be
// reached (they create it when the first write reaches them). A head
// given for a project created now is recorded as its HEAD (SetHead), so
// that a site created later points there too.
func (c *Coordinator) CreateProject(ctx context.Context, project, head string) (created bool, pending []string, err error) {
	if head != "" {
		if err := checkHead(head); err != nil {
			return false, nil, err
		}
	}
	created, err = c.cfg.Repos.Root().CreateWithHead(ctx, project, cmp.Or(head, c.cfg.DefaultHead))
	if err != nil {
		return false, nil, err
	}
	if err := c.undelete(ctx, project); err != nil {
		return created, nil, err
	}
	if err := c.catchUpProject(ctx, project, nil); err != nil {
		return created, nil, err
	}
	peers := c.peersOf(c.policy(project))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Go(func() {
			if err := c.createAt(ctx, p, project, head); err != nil {
				mu.Lock()
				pending = append(pending, p)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sort.Strings(pending)
	if created && head != "" {
		if _, err := c.SetHead(ctx, project, head); err != nil {
			return created, pending, fmt.Errorf("record HEAD %s: %w", head, err)
		}
	}
	return created, pending, nil
}

// createWait is how long a project creation waits for a peer that is not
// connected: a site that just started dials its peers within a second.
const createWait = 3 * time.Second

// createAt creates the project at peer, retrying while the peer is not
// connected for up to createWait.
func (c *Coordinator) createAt(ctx context.Context, peer, project, head string) error {
	ctx, cancel := context.WithTimeout(ctx, createWait)
	defer cancel()
	for {
		_, err := c.cfg.Mesh.Request(ctx, peer, kind.Create, encode(createMsg{Project: project, Head: head}))
		if err == nil || !errors.Is(err, transport.ErrPeerUnavailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}
