package coord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sitesync/sitesync/internal/kind"
	"github.com/sitesync/sitesync/packsync"
)

// catchUpRetry is how soon a failed catch-up is tried again.
const catchUpRetry = 2 * time.Second

// orphanAge is how old a quarantine without a prepared write must be before
// catch-up removes it: a pack whose write failed and whose ABORT was lost.
// Far longer than any write waits for its decision.
const orphanAge = 30 * time.Minute

// KickCatchUp asks for a catch-up of every project soon (the placement
// changed, say).
func (c *Coordinator) KickCatchUp() { c.kickCatchUp() }

// Serving reports whether this site serves project: it holds it, and it is
// not a project newly placed here that is still being copied from a peer.
func (c *Coordinator) Serving(project string) bool {
	if !c.holds(project) {
		return false
	}
	c.mu.Lock()
	p := c.projects[project]
	c.mu.Unlock()
	if p == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.placing
}

func (c *Coordinator) kickCatchUp() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// catchUpLoop catches the site up with the refdb at start, whenever it is
// kicked (a peer came back, a prepared write was aborted) and every
// catchUpEvery.
func (c *Coordinator) catchUpLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures, lastErr := 0, ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-timer.C:
		}
		next := catchUpEvery
		if err := c.catchUpAll(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			// Retries back off; the log says so when the reason changes,
			// and what stays stuck is in status and /readyz (Parked).
			failures++
			next = backoff(failures, catchUpRetry, catchUpEvery)
			if msg := err.Error(); msg != lastErr {
				c.log.Warn("catch-up incomplete; retrying", "error", err, "retry_in", next, "failures", failures)
				lastErr = msg
			} else {
				c.log.Debug("catch-up incomplete; retrying", "error", err, "retry_in", next, "failures", failures)
			}
		} else {
			if failures > 0 {
				c.log.Info("catch-up complete after failures", "failures", failures)
			}
			failures, lastErr = 0, ""
			if !c.caughtUp.Swap(true) {
				c.log.Info("caught up with the refdb")
			}
		}
		timer.Reset(next)
	}
}

// catchUpAll catches up every project placed here: those with a repository
// here and those a connected peer holds that this site lacks.
func (c *Coordinator) catchUpAll(ctx context.Context) error {
	names, err := c.localProjects()
	if err != nil {
		return fmt.Errorf("list projects: %w", err)
	}
	for _, st := range c.cfg.Mesh.Peers() {
		if !st.Connected {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, refdbTimeout)
		reply, err := c.cfg.Mesh.Request(rctx, st.Name, kind.Projects, nil)
		cancel()
		if err != nil {
			continue
		}
		var m projectsMsg
		if err := decode(reply, &m, (*projectsMsg).check); err != nil {
			c.log.Warn("bad project list", "peer", st.Name, "error", err)
			continue
		}
		for _, p := range m.Projects {
			if c.holds(p) && !slices.Contains(names, p) {
				// Newly placed here: requests go to a site that has it
				// until the copy is complete.
				c.project(p).setPlacing(true)
				if _, err := c.createRepo(ctx, p); err != nil {
					return err
				}
				c.log.Info("copying a project placed here from a peer", "project", p, "peer", st.Name)
				names = append(names, p)
			}
		}
	}
	var errs []error
	for _, name := range names {
		if !c.holds(name) {
			continue
		}
		if err := c.catchUpProject(ctx, name, nil); err != nil {
			errs = append(errs, err)
		} else if c.project(name).setPlacing(false) {
			c.log.Info("serving a project newly placed here", "project", name)
		}
		c.dropOrphans(name)
	}
	// A project no longer placed here (or gone) has nothing to apply here.
	c.parked.retain(func(project string) bool { return c.holds(project) && slices.Contains(names, project) })
	return errors.Join(errs...)
}

// gitTmpAge is how long nothing must have changed in a quarantine git's
// receive-pack left before catch-up removes it: a push receiving a pack
// writes into it all along, and one waiting for its decision waits at most
// its replication timeout.
const gitTmpAge = 2 * time.Hour

// dropOrphans removes the project's quarantines that no prepared write owns
// and that have not changed for orphanAge, and those git's receive-pack
// left (killed mid-push) that have not changed for gitTmpAge.
func (c *Coordinator) dropOrphans(name string) {
	repo, err := c.cfg.Repos.Open(name)
	if err != nil {
		return
	}
	dropped, err := packsync.DropStaleGit(repo.Dir, gitTmpAge, time.Now())
	for _, d := range dropped {
		c.log.Info("dropped a quarantine git's receive-pack left", "project", name, "dir", d)
	}
	if err != nil {
		c.log.Warn("drop git quarantines", "project", name, "error", err)
	}
	ids, err := packsync.List(repo.Dir)
	if err != nil {
		return
	}
	for _, id := range ids {
		if _, err := c.prepared.Get(id); err == nil {
			continue
		}
		q, err := packsync.Create(repo.Dir, id)
		if err != nil {
			continue
		}
		if changed, err := packsync.LastChange(q.Dir()); err != nil || time.Since(changed) < orphanAge {
			continue // a pack may still be arriving into its pack/
		}
		c.log.Info("dropping an orphaned quarantine", "project", name, "txn", id)
		if err := q.Drop(); err != nil {
			c.log.Warn("drop orphaned quarantine", "project", name, "txn", id, "error", err)
		}
	}
}
