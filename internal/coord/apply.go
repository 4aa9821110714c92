package coord

import (
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
	"github.com/sitesync/sitesync/internal/kind"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/txn"
	"github.com/sitesync/sitesync/packsync"
	"github.com/sitesync/sitesync/refdb"
)

// project is what the site knows of one project's guarded refs.
type project struct {
	name string

	// apply serialises every ref move the coordinator makes in the
	// project, so refs only move forward in refdb version order.
	apply sync.Mutex

	mu      sync.Mutex
	loaded  bool              // applied holds the refdb's versions since a catch-up
	applied map[string]uint64 // highest refdb version of each ref held here
	writers map[string]string // site that wrote that version, when known
	changed chan struct{}     // closed and replaced when a ref moves
	// inflight are the refs of this site's own pushes between their
	// pre-receive and their end: a peer's write to one of them waits, so the
	// push meets the refdb's verdict rather than a ref lock it lost.
	inflight map[string]map[string]bool // txn → refs
	idle     chan struct{}              // closed and replaced when an inflight push ends
	placing  bool                       // newly placed here, not yet copied
	queue    []*applyReq                // applyVersions calls waiting for apply

	// ndCommit is held by a NoteDb batch from its decision to the end of
	// its local commit, so batches commit in decision order (notedb.go).
	ndCommit sync.Mutex
}

// setPlacing sets the placing flag and reports whether it changed.
func (p *project) setPlacing(v bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := p.placing != v
	p.placing = v
	return changed
}

func (c *Coordinator) project(name string) *project {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.projects[name]
	if p == nil {
		p = &project{
			name:     name,
			applied:  make(map[string]uint64),
			writers:  make(map[string]string),
			changed:  make(chan struct{}),
			inflight: make(map[string]map[string]bool),
			idle:     make(chan struct{}),
		}
		c.projects[name] = p
	}
	return p
}

// notify wakes whoever waits for a ref of the project to move.
func (p *project) notify() {
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// begin marks the refs of one of this site's writes as in flight.
func (p *project) begin(id string, ups []Update) {
	p.mu.Lock()
	defer p.mu.Unlock()
	set := make(map[string]bool, len(ups))
	for _, u := range ups {
		set[u.Ref] = true
	}
	p.inflight[id] = set
}

func (p *project) end(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.inflight[id]; ok {
		delete(p.inflight, id)
		close(p.idle)
		p.idle = make(chan struct{})
	}
}

// inflightRef reports whether a write of this site holds ref in flight.
func (p *project) inflightRef(ref string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, set := range p.inflight {
		if set[ref] {
			return true
		}
	}
	return false
}

// waitIdle waits until no push of this site holds one of refs, or until
// limit: a push stuck past its own timeout must not block peers forever.
func (p *project) waitIdle(ctx context.Context, refs []string, limit time.Duration) {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		busy := false
		for _, set := range p.inflight {
			for _, r := range refs {
				busy = busy || set[r]
			}
		}
		idle := p.idle
		p.mu.Unlock()
		if !busy {
			return
		}
		select {
		case <-idle:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// decided records versions this site itself decided (its own writes).
func (p *project) decided(vs []Version) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range vs {
		if v.Version > p.applied[v.Ref] {
			p.applied[v.Ref] = v.Version
			if v.Site != "" {
				p.writers[v.Ref] = v.Site
			}
		}
	}
}

// applyVersions moves the project's refs here to the given refdb versions,
// skipping any this site already holds a later version of, after making
// sure every object they need is here (fetching from the sites in from, in
// order). The first time a project is touched after a start, the whole
// project is caught up from the refdb instead, which includes vs.
func (c *Coordinator) applyVersions(ctx context.Context, name string, vs []Version, from []string) error {
	p := c.project(name)
	p.mu.Lock()
	loaded := p.loaded
	p.mu.Unlock()
	if !loaded {
		return c.catchUpProject(ctx, name, from)
	}
	refs := make([]string, len(vs))
	for i, v := range vs {
		refs[i] = v.Ref
	}
	p.waitIdle(ctx, refs, c.policy(name).Timeout+refdbTimeout)
	// Group commit: whoever takes p.apply applies every request queued by
	// then in one ref transaction, a ref moved by several of them once.
	req := &applyReq{vs: vs, from: from, done: make(chan struct{})}
	p.mu.Lock()
	p.queue = append(p.queue, req)
	p.mu.Unlock()
	p.apply.Lock()
	defer p.apply.Unlock()
	p.mu.Lock()
	reqs := p.queue
	p.queue = nil
	p.mu.Unlock()
	if len(reqs) > 0 {
		c.applyQueued(ctx, p, reqs)
	}
	<-req.done // applied by this call or an earlier holder of p.apply
	return req.err
}

// applyReq is one applyVersions call waiting for the project's apply lock.
type applyReq struct {
	vs   []Version
	from []string
	err  error
	done chan struct{} // closed once err is set
}

// applyQueued applies the versions of reqs as one transaction; if that
// fails and there were several, each is tried alone so that one request's
// failure (objects no peer could send) is not every request's. What a
// request announces is only a hint: the refdb is asked first, and only
// what it holds is applied (confirmed). The caller holds p.apply.
func (c *Coordinator) applyQueued(ctx context.Context, p *project, reqs []*applyReq) {
	finish := func(r *applyReq, err error) {
		r.err = err
		close(r.done)
	}
	var vs []Version
	var from []string
	for _, r := range reqs {
		vs = append(vs, r.vs...)
		from = union(from, r.from)
	}
	vs, err := c.confirmed(ctx, p.name, latest(vs))
	if err != nil {
		for _, r := range reqs {
			finish(r, err)
		}
		return
	}
	if err := c.applyLocked(ctx, p, vs, from); err == nil || len(reqs) == 1 {
		for _, r := range reqs {
			finish(r, err)
		}
		return
	}
	held := make(map[string]Version, len(vs))
	for _, v := range vs {
		held[v.Ref] = v
	}
	for _, r := range reqs {
		var mine []Version
		for _, v := range r.vs {
			if h, ok := held[v.Ref]; ok {
				mine = append(mine, h)
			}
		}
		finish(r, c.applyLocked(ctx, p, latest(mine), r.from))
	}
}

// confirmed is, of the versions a peer announced, what the refdb holds now
// (confirm): a COMMIT is a hint to look, never proof (invariant 9).
func (c *Coordinator) confirmed(ctx context.Context, project string, vs []Version) ([]Version, error) {
	var refs []string
	for _, v := range vs {
		if c.cfg.Guarded(v.Ref) {
			refs = append(refs, v.Ref)
		}
	}
	if len(refs) == 0 {
		return vs, nil
	}
	rctx, cancel := context.WithTimeout(ctx, refdbTimeout)
	recs, err := c.cfg.Store.Get(rctx, project, refs...)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("confirm %d refs of %q with the refdb: %w", len(refs), project, err)
	}
	keep, refused := confirm(vs, recs, c.cfg.Guarded)
	if len(refused) > 0 {
		c.metrics.refused.Add(float64(len(refused)))
		v := refused[0]
		c.log.Warn("ignored versions the refdb does not hold", "project", project, "refs", len(refused),
			"ref", v.Ref, "announced_value", v.Value, "announced_version", v.Version)
	}
	return keep, nil
}

// applyLocked moves refs here to the versions vs that move them forward
// (invariant 3); the caller holds p.apply.
func (c *Coordinator) applyLocked(ctx context.Context, p *project, vs []Version, from []string) error {
	p.mu.Lock()
	todo := forward(vs, func(ref string) uint64 { return p.applied[ref] })
	p.mu.Unlock()
	return c.moveTo(ctx, p, todo, from, "")
}

// moveTo moves refs here to the versions vs, after making sure every object
// they need is here (fetching from the sites in from, in order). txn names
// the write when vs are all one write's. The caller holds p.apply.
func (c *Coordinator) moveTo(ctx context.Context, p *project, vs []Version, from []string, txn string) error {
	if len(vs) == 0 {
		return nil
	}
	repo, err := c.cfg.Repos.Open(p.name)
	if err != nil {
		return err
	}
	refs := make([]string, len(vs))
	for i, v := range vs {
		refs[i] = v.Ref
	}
	curs, err := c.localRefs(ctx, repo, refs)
	if err != nil {
		return err
	}
	var wants, haves []string
	var moves []Move
	for i, v := range vs {
		cur := curs[i]
		if cur != v.Value {
			moves = append(moves, Move{Ref: v.Ref, Old: cur, New: v.Value, Version: v.Version, Site: v.Site})
			if v.Value != refmove.ZeroID {
				wants = append(wants, v.Value)
			}
		}
		if cur != refmove.ZeroID {
			haves = append(haves, cur)
		}
	}
	if err := c.ensureObjects(ctx, p.name, repo, wants, haves, from); err != nil {
		return err
	}
	if err := c.moveRefs(ctx, p, repo, Moved{Project: p.name, Txn: txn, Moves: moves}); err != nil {
		return err
	}
	p.decided(vs)
	c.parked.clear(p.name, vs)
	return nil
}

// localRef is the value of the ref named exactly ref here (no revision
// syntax, no expansion of the name), ZeroID if it does not exist.
func (c *Coordinator) localRef(ctx context.Context, repo *git.Repo, ref string) (string, error) {
	// A cancelled read would kill the shared cat-file; these are short.
	id, err := repo.Objects.RefValue(context.WithoutCancel(ctx), ref)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", ref, err)
	}
	return id, nil
}

// localRefs is the value of each of refs here, ZeroID for one that does not
// exist, asked of the repository's cat-file in one exchange.
func (c *Coordinator) localRefs(ctx context.Context, repo *git.Repo, refs []string) ([]string, error) {
	// A cancelled read would kill the shared cat-file; these are short.
	infos, err := repo.Objects.Infos(context.WithoutCancel(ctx), refs)
	if err != nil {
		return nil, fmt.Errorf("read %d refs: %w", len(refs), err)
	}
	ids := make([]string, len(refs))
	for i, in := range infos {
		ids[i] = in.ID
		if in.Missing {
			ids[i] = refmove.ZeroID
		}
	}
	return ids, nil
}

// ensureObjects makes sure every object reachable from wants is here,
// fetching a pack from the first of the sites in from that has them.
func (c *Coordinator) ensureObjects(ctx context.Context, project string, repo *git.Repo, wants, haves, from []string) error {
	if len(wants) == 0 {
		return nil
	}
	missing, err := c.missing(ctx, repo, wants)
	if err != nil || len(missing) == 0 {
		return err
	}
	dir := repo.Dir
	var errs []error
	for _, peer := range from {
		if peer == c.cfg.Site {
			continue
		}
		err := c.fetch(ctx, project, dir, peer, missing, haves)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return fmt.Errorf("objects %s of %q are missing here and no peer was asked", missing[0], project)
	}
	return fmt.Errorf("fetch objects of %q: %w", project, errors.Join(errs...))
}

// fewObjects is up to how many objects missing asks the repository's
// long-lived cat-file (pipelined) rather than starting a git process: the
// apply of a batch of small writes must not cost a process start.
const fewObjects = 4096

// missing returns those of ids the repository lacks. Objects present are
// complete: the repository holds only complete histories.
func (c *Coordinator) missing(ctx context.Context, repo *git.Repo, ids []string) ([]string, error) {
	if len(ids) > fewObjects {
		return git.MissingObjects(ctx, repo.Dir, "", ids)
	}
	// A cancelled read would kill the shared cat-file; these reads are short.
	infos, err := repo.Objects.Infos(context.WithoutCancel(ctx), ids)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, in := range infos {
		if in.Missing {
			out = append(out, ids[i])
		}
	}
	return out, nil
}

// fetch asks peer for a pack of wants (not of haves), received into a
// quarantine of its own and moved into the repository once complete.
func (c *Coordinator) fetch(ctx context.Context, project, dir, peer string, wants, haves []string) error {
	id := txn.New(c.cfg.Site, time.Now())
	defer c.recv.Forget(id)
	q, err := packsync.Create(dir, id)
	if err != nil {
		return err
	}
	defer q.Drop()
	if _, err := c.cfg.Mesh.Request(ctx, peer, kind.Fetch, encode(fetchMsg{Project: project, Txn: id, Wants: wants, Haves: haves})); err != nil {
		return fmt.Errorf("fetch from site %s: %w", peer, err)
	}
	if err := c.recv.Wait(ctx, id); err != nil {
		return fmt.Errorf("fetch from site %s: %w", peer, err)
	}
	if missing, err := q.Missing(ctx, wants); err != nil || len(missing) > 0 {
		return fmt.Errorf("fetch from site %s: %d objects still missing (%v)", peer, len(missing), err)
	}
	c.metrics.fetches.Inc()
	return q.Migrate()
}

// catchUpChunk is how many refs catch-up moves in one ref transaction: a
// repository of many refs catches up in steps that each log progress, and a
// failing step is retried ref by ref so one bad ref never holds the others.
const catchUpChunk = 256

// catchUpProject moves every guarded ref of the project here to the value
// the refdb holds, fetching what is missing from the sites in from (or any
// placement peer). It is how a site that was away, or that crashed after its
// refdb commit, or that holds a value it should not, converges. A ref that
// cannot be moved is retried alone, recorded (Parked) and reported in the
// error; the others move.
func (c *Coordinator) catchUpProject(ctx context.Context, name string, from []string) error {
	p := c.project(name)
	p.apply.Lock()
	defer p.apply.Unlock()
	// A write of this site decided while this pass reads (the refdb, then
	// the refs here) is newer than the records read: its refs are left to
	// the next pass, never moved back to what the refdb held before it.
	p.mu.Lock()
	seen := maps.Clone(p.applied)
	p.mu.Unlock()
	movedSince := func(ref string) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.applied[ref] != seen[ref]
	}
	rctx, cancel := context.WithTimeout(ctx, refdbTimeout)
	recs, err := c.cfg.Store.List(rctx, name)
	cancel()
	if err != nil {
		return fmt.Errorf("catch up %q: %w", name, err)
	}
	if projectDeleted(recs) {
		// Deleted while this site was away (delete.go).
		return c.removeRepo(name)
	}
	repo, err := c.cfg.Repos.Open(name)
	if err != nil {
		return err
	}
	local, err := git.ListRefs(ctx, repo.Dir, "")
	if err != nil {
		return fmt.Errorf("catch up %q: %w", name, err)
	}
	c.noteUnimported(name, recs, local)
	behind := behindRefdb(recs, local, c.cfg.Guarded, func(ref string) bool { return p.inflightRef(ref) || movedSince(ref) })
	peers := append(slices.Clone(from), c.peersOf(c.policy(name))...)
	peers = c.byWriter(recs, peers)
	start := time.Now()
	failing := make(map[string]bool)
	var errs []error
	for i := 0; i < len(behind); i += catchUpChunk {
		part := behind[i:min(i+catchUpChunk, len(behind))]
		if err := c.moveTo(ctx, p, part, peers, ""); err != nil {
			if ctx.Err() != nil {
				return err
			}
			for _, v := range part {
				if err := c.moveTo(ctx, p, []Version{v}, peers, ""); err != nil {
					failing[v.Ref] = true
					c.parked.fail(name, v, err, time.Now())
					errs = append(errs, err)
				}
			}
		}
		if len(behind) > catchUpChunk {
			c.log.Info("catching up", "project", name, "refs_done", i+len(part), "refs_behind", len(behind), "elapsed", time.Since(start).Round(time.Millisecond))
		}
	}
	// The refdb is the authority: what this site remembers of versions is
	// what the refdb holds, whatever a peer's message said before.
	p.mu.Lock()
	for _, r := range recs {
		if !failing[r.Ref] && p.applied[r.Ref] == seen[r.Ref] {
			p.applied[r.Ref] = r.Version
			if r.Site != "" {
				p.writers[r.Ref] = r.Site
			}
		}
	}
	p.loaded = true
	p.mu.Unlock()
	c.parked.keep(name, failing)
	if len(errs) > 0 {
		return fmt.Errorf("catch up %q: %d of %d refs behind could not be moved: %w", name, len(failing), len(behind), errs[0])
	}
	if len(behind) > 0 {
		c.log.Info("caught up", "project", name, "refs", len(behind), "elapsed", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// byWriter orders peers so the sites that wrote the records come first:
// they certainly hold the objects.
func (c *Coordinator) byWriter(recs []refdb.Record, peers []string) []string {
	count := make(map[string]int)
	for _, r := range recs {
		count[r.Site]++
	}
	out := slices.Compact(slices.Clone(peers))
	sort.SliceStable(out, func(i, j int) bool { return count[out[i]] > count[out[j]] })
	var uniq []string
	seen := make(map[string]bool)
	for _, s := range out {
		if !seen[s] && s != c.cfg.Site {
			seen[s] = true
			uniq = append(uniq, s)
		}
	}
	return uniq
}

// CheckReadRef checks a name WaitRef may read: a full ref name under refs/
// that git's check-ref-format accepts. HEAD, short names (main) and
// revisions (main~2, main:path, :/text, main^{tree}) are refused: the read
// API answers a ref's value, it does not evaluate revisions. The error
// names the ref and what is wrong with it.
func CheckReadRef(ref string) error {
	if !strings.HasPrefix(ref, "refs/") {
		return fmt.Errorf("ref %q is not a full ref name under refs/ (such as refs/heads/main); short names, HEAD and revisions are not read", ref)
	}
	if err := refdb.ValidateRef(ref); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), refdb.ErrInvalid.Error()+": "))
	}
	return nil
}

// WaitRef returns the value of ref at this site once it equals want (any
// value when want is ""), or the value it has when ctx ends, with ctx's
// error. ref must pass CheckReadRef.
func (c *Coordinator) WaitRef(ctx context.Context, name, ref, want string) (string, error) {
	if err := CheckReadRef(ref); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	repo, err := c.cfg.Repos.Open(name)
	if err != nil {
		return "", err
	}
	p := c.project(name)
	// A push at this site moves refs without the coordinator; the poll is
	// the backstop for that, the notification the fast path.
	const poll = 100 * time.Millisecond
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		cur, err := c.localRef(ctx, repo, ref)
		if err != nil {
			return "", err
		}
		if want == "" || cur == want {
			return cur, nil
		}
		t := time.NewTimer(poll)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return cur, ctx.Err()
		}
		t.Stop()
	}
}
