package coord

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/journal"
	"github.com/sitesync/sitesync/internal/kind"
	"github.com/sitesync/sitesync/packsync"
	"github.com/sitesync/sitesync/refdb"
)

// arrivalWait bounds how long a peer waits for a pack stream announced by a
// PREPARE or COMMIT to show up at all (its first bytes are normally ahead of
// the message that announces it).
const arrivalWait = 5 * time.Second

// handlePrepare is a peer's side of PREPARE: it votes yes only when every
// object the write needs is here (repository or quarantine) and durable, and
// the prepared write is in the journal.
func (c *Coordinator) handlePrepare(ctx context.Context, from string, payload []byte) ([]byte, error) {
	var m prepareMsg
	if err := decode(payload, &m, (*prepareMsg).check); err != nil {
		return nil, err
	}
	vote := c.prepare(ctx, from, m)
	if vote.Vote != voteYes {
		c.log.Info("voted against a write", "origin", from, "project", m.Project, "txn", m.Txn, "vote", vote.Vote, "reason", vote.Reason)
	}
	return encode(vote), nil
}

func (c *Coordinator) prepare(ctx context.Context, from string, m prepareMsg) voteMsg {
	dir, err := c.openForPeer(ctx, m.Project)
	if err != nil {
		return voteMsg{Vote: voteNo, Reason: err.Error()}
	}
	if m.Pack {
		if err := c.waitPack(ctx, m.Txn); err != nil {
			return voteMsg{Vote: voteMissing, Reason: "pack: " + err.Error()}
		}
	}
	q, err := packsync.Create(dir, m.Txn)
	if err != nil {
		return voteMsg{Vote: voteNo, Reason: err.Error()}
	}
	news := make([]string, 0, len(m.Updates))
	for _, u := range m.Updates {
		news = append(news, u.New)
	}
	missing, err := q.Missing(ctx, news)
	if err != nil {
		return voteMsg{Vote: voteNo, Reason: err.Error()}
	}
	if len(missing) > 0 {
		return voteMsg{Vote: voteMissing, Reason: fmt.Sprintf("%d objects missing, %s first", len(missing), missing[0])}
	}
	if err := q.Sync(); err != nil {
		return voteMsg{Vote: voteNo, Reason: err.Error()}
	}
	now := time.Now()
	e := journal.Entry{Txn: m.Txn, Project: m.Project, Origin: from, Prepared: now, Deadline: prepareDeadline(now, m.TimeoutMS)}
	for _, u := range m.Updates {
		e.Updates = append(e.Updates, journal.Update{Ref: u.Ref, Old: u.Old, New: u.New})
	}
	if err := c.prepared.Put(e); err != nil {
		return voteMsg{Vote: voteNo, Reason: err.Error()}
	}
	return voteMsg{Vote: voteYes}
}

// waitPack waits for the pack stream of id: first for it to show up, then
// for it to end.
func (c *Coordinator) waitPack(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, arrivalWait)
	defer cancel()
	for {
		err := c.recv.Wait(ctx, id)
		if !errors.Is(err, packsync.ErrNoPack) {
			return err
		}
		// Still nothing: the pack may not have reached us yet.
		select {
		case <-ctx.Done():
			return packsync.ErrNoPack
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// handleCommit is a peer's side of COMMIT: the write is decided; move its
// objects in and its refs forward.
func (c *Coordinator) handleCommit(ctx context.Context, from string, payload []byte) ([]byte, error) {
	var m commitMsg
	if err := decode(payload, &m, (*commitMsg).check); err != nil {
		return nil, err
	}
	if !c.holds(m.Project) {
		return nil, fmt.Errorf("project %q is not placed at site %s", m.Project, c.cfg.Site)
	}
	start := time.Now()
	c.log.Debug("commit", "txn", m.Txn, "project", m.Project, "versions", m.Versions, "pack", m.Pack)
	if err := c.commit(ctx, m.Project, m.Txn, m.Versions, m.Pack, []string{from}); err != nil {
		// The origin, told, stops redelivering; this site's catch-up owns
		// the write now (it retries, and reports what stays stuck).
		c.log.Warn("commit failed; catching up", "txn", m.Txn, "project", m.Project, "origin", from, "error", err)
		c.kickCatchUp()
		return nil, err
	}
	c.metrics.applyLatency.Observe(time.Since(start).Seconds())
	return []byte("ok"), nil
}

// commit applies a decided write here: the objects of its quarantine, if
// any, move into the repository, then its refs move to their versions.
func (c *Coordinator) commit(ctx context.Context, name, id string, vs []Version, pack bool, from []string) error {
	dir, err := c.openForPeer(ctx, name)
	if err != nil {
		return err
	}
	if pack {
		_ = c.waitPack(ctx, id) // without it, the objects are fetched
	}
	if err := c.migrate(dir, id); err != nil {
		return err
	}
	if err := c.applyVersions(ctx, name, vs, from); err != nil {
		return err
	}
	c.recv.Forget(id)
	return c.prepared.Remove(id)
}

// migrate moves the quarantine of id, if there is one, into the repository.
func (c *Coordinator) migrate(dir, id string) error {
	if _, err := os.Stat(filepath.Join(dir, "objects", "incoming-sitesync-"+id)); err != nil {
		return nil
	}
	q, err := packsync.Create(dir, id)
	if err != nil {
		return err
	}
	return q.Migrate()
}

// handleAbort drops what a failed write left here.
func (c *Coordinator) handleAbort(ctx context.Context, from string, payload []byte) ([]byte, error) {
	var m abortMsg
	if err := decode(payload, &m, (*abortMsg).check); err != nil {
		return nil, err
	}
	if err := c.drop(ctx, m.Project, m.Txn); err != nil {
		return nil, err
	}
	return []byte("ok"), nil
}

func (c *Coordinator) drop(ctx context.Context, name, id string) error {
	// A pack still arriving is cut short, and one yet to come refused: it
	// would recreate the quarantine. Nothing waits for a pack that will
	// not come.
	c.recv.Cancel(id)
	if repo, err := c.cfg.Repos.Open(name); err == nil {
		q, err := packsync.Create(repo.Dir, id)
		if err == nil {
			if err := q.Drop(); err != nil {
				return err
			}
		}
	}
	return c.prepared.Remove(id)
}

// handleFetch sends the asking site a pack of the objects it wants.
func (c *Coordinator) handleFetch(ctx context.Context, from string, payload []byte) ([]byte, error) {
	var m fetchMsg
	if err := decode(payload, &m, (*fetchMsg).check); err != nil {
		return nil, err
	}
	repo, err := c.cfg.Repos.Open(m.Project)
	if err != nil {
		return nil, err
	}
	missing, err := git.MissingObjects(ctx, repo.Dir, "", m.Wants)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("site %s lacks %d of the objects, %s first", c.cfg.Site, len(missing), missing[0])
	}
	if err := packsync.Ship(ctx, c.cfg.Mesh, kind.Pack, from, repo.Dir, packsync.Header{Project: m.Project, Txn: m.Txn}, m.Wants, m.Haves); err != nil {
		return nil, err
	}
	return []byte("ok"), nil
}

// handleCreate creates a project's repository here.
func (c *Coordinator) handleCreate(ctx context.Context, from string, payload []byte) ([]byte, error) {
	var m createMsg
	if err := decode(payload, &m, (*createMsg).check); err != nil {
		return nil, err
	}
	_, missing := c.cfg.Repos.Root().Existing(m.Project)
	created := missing != nil
	dir, err := c.openForPeer(ctx, m.Project)
	if err != nil {
		return nil, err
	}
	if created && m.Head != "" {
		if err := git.SetHead(ctx, dir, m.Head, applying); err != nil {
			return nil, err
		}
	}
	if err := c.catchUpProject(ctx, m.Project, []string{from}); err != nil {
		return nil, err
	}
	return []byte("ok"), nil
}

// handleProjects lists the projects held here that the asking site should
// hold too.
func (c *Coordinator) handleProjects(ctx context.Context, from string, payload []byte) ([]byte, error) {
	all, err := c.localProjects()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range all {
		for _, s := range c.policy(p).Sites {
			if s == from {
				out = append(out, p)
				break
			}
		}
	}
	return encode(projectsMsg{Projects: out}), nil
}

// resolvePrepared settles prepared writes whose origin went quiet, from the
// refdb alone (invariant 5): commit when the refdb names the write, abort
// after the deadline otherwise.
func (c *Coordinator) resolvePrepared(ctx context.Context) {
	entries, err := c.prepared.List()
	if err != nil {
		c.log.Error("read the prepared journal", "error", err)
	}
	now := time.Now()
	for _, e := range entries {
		if now.Sub(e.Prepared) < resolveAfter {
			continue
		}
		if err := c.resolve(ctx, e, now); err != nil {
			c.log.Warn("resolve prepared write", "txn", e.Txn, "project", e.Project, "origin", e.Origin, "error", err)
		}
	}
}

func (c *Coordinator) resolve(ctx context.Context, e journal.Entry, now time.Time) error {
	var refs []string
	for _, u := range e.Updates {
		if c.cfg.Guarded(u.Ref) {
			refs = append(refs, u.Ref)
		}
	}
	var recs []refdb.Record
	if len(refs) > 0 {
		rctx, cancel := context.WithTimeout(ctx, refdbTimeout)
		var err error
		recs, err = c.cfg.Store.Get(rctx, e.Project, refs...)
		cancel()
		if err != nil {
			return err
		}
	}
	switch resolveRule(e, recs, c.cfg.Guarded, now) {
	case resolveCommit:
		vs := make([]Version, 0, len(recs))
		for _, r := range recs {
			if r.Version > 0 {
				vs = append(vs, versionOf(r))
			}
		}
		c.log.Info("committing a prepared write the refdb decided", "txn", e.Txn, "project", e.Project, "origin", e.Origin)
		err := c.commit(ctx, e.Project, e.Txn, vs, false, []string{e.Origin})
		if err == nil || !now.After(e.Deadline) {
			return err
		}
		// Its objects are in; its refs cannot move here yet. Catch-up owns
		// them now: it retries with backoff and reports what stays stuck.
		c.log.Warn("a decided prepared write cannot be applied here; leaving it to catch-up", "txn", e.Txn, "project", e.Project, "origin", e.Origin, "error", err)
		c.kickCatchUp()
		return c.prepared.Remove(e.Txn)
	case resolveAbort:
		c.log.Info("aborting a prepared write the refdb does not name", "txn", e.Txn, "project", e.Project, "origin", e.Origin)
		if err := c.drop(ctx, e.Project, e.Txn); err != nil {
			return err
		}
		// Whatever did win may be missing here.
		c.kickCatchUp()
	}
	return nil
}
