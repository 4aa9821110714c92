package coord

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"time"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/kind"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/txn"
	"github.com/sitesync/sitesync/refdb"
)

// ErrBusy: the project has writes in flight at this site.
var ErrBusy = errors.New("writes in flight")

// A project is deleted in the refdb before it is removed anywhere: every
// ref is deleted (one write, decided ref by ref in batches like a
// non-atomic push), then the HEAD record (git.HeadRef) becomes a
// tombstone. The records stay, as tombstones: a site that was down finds
// the project deleted when it catches up (projectDeleted) and removes it
// then, and versions keep growing if the name is used again.

// DeleteProject deletes the project at every placement site. It refuses
// while this site has writes of the project in flight (ErrBusy). It
// returns the sites that could not be told (they remove it when they
// next catch up).
func (c *Coordinator) DeleteProject(ctx context.Context, project string) (pending []string, err error) {
	repo, err := c.cfg.Repos.Open(project)
	if err != nil {
		return nil, err
	}
	p := c.project(project)
	if p.busy() {
		return nil, fmt.Errorf("%w: project %q has writes in progress at site %s; try again when they end", ErrBusy, project, c.cfg.Site)
	}
	// Here as the refdb says, so that every ref is deleted from the value
	// the refdb holds.
	if err := c.catchUpProject(ctx, project, nil); err != nil {
		return nil, fmt.Errorf("delete %q: %w", project, err)
	}
	local, err := git.ListRefs(ctx, repo.Dir, "refs/")
	if err != nil {
		return nil, err
	}
	var ups []Update
	for ref, id := range local {
		if ref != git.HeadRef && c.cfg.Guarded(ref) {
			ups = append(ups, Update{Ref: ref, Old: id, New: refmove.ZeroID})
		}
	}
	sort.Slice(ups, func(i, j int) bool { return ups[i].Ref < ups[j].Ref })
	if len(ups) > 0 {
		w := c.localWrite(project, repo.Dir, ups)
		w.perRef = true
		p.begin(w.id, ups)
		res, err := c.decide(ctx, w)
		p.end(w.id)
		if err != nil {
			return nil, fmt.Errorf("delete the refs of %q: %w", project, err)
		}
		c.commitHere(ctx, p, repo, w.id, ups, res)
		if len(res.Refused) > 0 {
			return nil, fmt.Errorf("%w: %d refs of %q moved while it was being deleted (%v); the project is kept, try again",
				ErrConflict, len(res.Refused), project, joinRefused(project, res.Refused))
		}
	}
	if err := c.tombstoneHead(ctx, project); err != nil {
		return nil, err
	}
	if err := c.removeRepo(project); err != nil {
		return nil, err
	}
	c.log.Info("project deleted", "project", project, "refs", len(ups))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, peer := range c.peersOf(c.policy(project)) {
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, createWait)
			defer cancel()
			if _, err := c.cfg.Mesh.Request(rctx, peer, kind.Delete, encode(createMsg{Project: project})); err != nil {
				c.log.Warn("a peer did not remove a deleted project; it will when it next catches up", "project", project, "peer", peer, "error", err)
				mu.Lock()
				pending = append(pending, peer)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sort.Strings(pending)
	return pending, nil
}

// tombstoneHead records in the refdb that the project is deleted.
func (c *Coordinator) tombstoneHead(ctx context.Context, project string) error {
	rctx, cancel := context.WithTimeout(ctx, refdbTimeout)
	defer cancel()
	recs, err := c.cfg.Store.Get(rctx, project, git.HeadRef)
	if err != nil {
		return fmt.Errorf("delete %q: %w", project, err)
	}
	old := recs[0].Value
	if old == "" {
		old = refmove.ZeroID
	}
	b := refdb.Batch{Txn: txn.New(c.cfg.Site, time.Now()), Site: c.cfg.Site,
		Updates: []refdb.Update{{Ref: git.HeadRef, Old: old, New: refmove.ZeroID}}}
	if _, err := c.cfg.Store.CAS(rctx, project, b); err != nil {
		return fmt.Errorf("delete %q: %w", project, err)
	}
	return nil
}

// projectDeleted is the rule of a deleted project: its HEAD record is a
// tombstone and no ref of it exists in the refdb.
func projectDeleted(recs []refdb.Record) bool {
	head := false
	for _, r := range recs {
		if r.Exists() {
			return false
		}
		if r.Ref == git.HeadRef && r.Version > 0 {
			head = true
		}
	}
	return head
}

// removeRepo removes the project's repository here: its git processes
// are stopped, the directory is renamed out of the way at once (git
// clients then find no repository) and removed.
func (c *Coordinator) removeRepo(project string) error {
	dir, err := c.cfg.Repos.Root().Existing(project)
	if errors.Is(err, git.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := c.cfg.Repos.Forget(project); err != nil {
		c.log.Warn("stopping the git processes of a deleted project", "project", project, "error", err)
	}
	trash := filepath.Join(c.cfg.Repos.Root().Dir(), fmt.Sprintf(".deleted-%d", time.Now().UnixNano()))
	if err := os.Rename(dir, trash); err != nil {
		return fmt.Errorf("remove %q: %w", project, err)
	}
	_ = git.Fsync(filepath.Dir(dir))
	c.forgetProject(project)
	return os.RemoveAll(trash)
}

// forgetProject drops what this site remembers of a removed project.
func (c *Coordinator) forgetProject(project string) {
	p := c.project(project)
	p.mu.Lock()
	p.loaded = false
	clear(p.applied)
	clear(p.writers)
	p.mu.Unlock()
	c.parked.keep(project, nil)
}

// handleDelete removes a project the refdb says was deleted; a peer's
// word alone removes nothing.
func (c *Coordinator) handleDelete(ctx context.Context, from string, payload []byte) ([]byte, error) {
	var m createMsg
	if err := decode(payload, &m, (*createMsg).check); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, refdbTimeout)
	recs, err := c.cfg.Store.List(rctx, m.Project)
	cancel()
	if err != nil {
		return nil, err
	}
	if !projectDeleted(recs) {
		return nil, fmt.Errorf("project %q is not deleted in the refdb", m.Project)
	}
	p := c.project(m.Project)
	p.apply.Lock()
	defer p.apply.Unlock()
	if err := c.removeRepo(m.Project); err != nil {
		return nil, err
	}
	c.log.Info("project deleted", "project", m.Project, "by", from)
	return []byte("ok"), nil
}

// busy reports whether a write of this site is in flight in the project.
func (p *project) busy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inflight) > 0
}

// undelete makes a deleted project live again before it is created anew
// (CreateProject): its HEAD record, a tombstone, becomes a record of the
// new repository's HEAD, so that no site's catch-up removes it.
func (c *Coordinator) undelete(ctx context.Context, project string) error {
	rctx, cancel := context.WithTimeout(ctx, refdbTimeout)
	defer cancel()
	recs, err := c.cfg.Store.Get(rctx, project, git.HeadRef)
	if err != nil {
		return fmt.Errorf("create %q: %w", project, err)
	}
	if recs[0].Version == 0 || recs[0].Exists() {
		return nil
	}
	repo, err := c.cfg.Repos.Open(project)
	if err != nil {
		return err
	}
	head, err := git.ReadHead(repo.Dir)
	if err != nil {
		return err
	}
	blob, err := git.WriteBlob(ctx, repo.Dir, git.HeadBlob(head))
	if err != nil {
		return err
	}
	b := refdb.Batch{Txn: txn.New(c.cfg.Site, time.Now()), Site: c.cfg.Site,
		Updates: []refdb.Update{{Ref: git.HeadRef, Old: refmove.ZeroID, New: blob}}}
	if _, err := c.cfg.Store.CAS(rctx, project, b); err != nil {
		return fmt.Errorf("create %q again after its delete: %w", project, err)
	}
	return nil
}
