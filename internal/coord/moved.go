package coord

import (
	"context"
	"fmt"

	"github.com/sitesync/sitesync/internal/git"
)

// Move is one ref moved at this site.
type Move struct {
	Ref     string
	Old     string // the value it had here
	New     string // the value it has now (the zero id: deleted)
	Version uint64 // the refdb version of New (0: the ref is not guarded)
	Site    string // the site that decided it, when known
}

// Moved is one ref transaction at this site. Every ref the coordinator
// moves, whatever moved it (this site's own write, a peer's commit, a
// prepared write resolved from the refdb, catch-up, the NoteDb fast path),
// goes through moveRefs, which reports it to Config.OnMoved; the refs a
// push's git receive-pack (or an installed hook's git) moves for a write
// this site decided are reported once git holds them. This is the seam an
// event stream and a Gerrit reindexer hang from.
type Moved struct {
	Project string
	Txn     string // the write, when the moves are one write's
	Own     bool   // decided at this site: its own git server made the write
	Moves   []Move
}

// moveRefs moves refs of project p in the repository, all or nothing, and
// reports it. The caller holds p.apply.
func (c *Coordinator) moveRefs(ctx context.Context, p *project, repo *git.Repo, ev Moved) error {
	if len(ev.Moves) == 0 {
		return nil
	}
	gu := make([]git.RefUpdate, len(ev.Moves))
	for i, m := range ev.Moves {
		gu[i] = git.RefUpdate{Ref: m.Ref, Old: m.Old, New: m.New}
	}
	if err := repo.Refs.Apply(ctx, gu); err != nil {
		return fmt.Errorf("move %d refs of %q: %w", len(gu), p.name, err)
	}
	if !ev.Own {
		c.metrics.refsApplied.Add(float64(len(gu)))
	}
	c.followHead(ctx, repo, ev.Moves)
	p.notify()
	c.announce(ev)
	return nil
}

// announce reports refs moved at this site.
func (c *Coordinator) announce(ev Moved) {
	if c.cfg.OnMoved != nil && len(ev.Moves) > 0 {
		c.cfg.OnMoved(ev)
	}
}
