package coord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// catchUpRetry is how soon a failed catch-up is tried again.
const catchUpRetry = 2 * time.Second

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
			c.log.Warn("catch-up incomplete; retrying", "error", err, "retry_in", catchUpRetry)
			next = catchUpRetry
		} else if !c.caughtUp.Swap(true) {
			c.log.Info("caught up with the refdb")
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
		reply, err := c.cfg.Mesh.Request(rctx, st.Name, KindProjects, nil)
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
				if _, err := c.cfg.Repos.Root().Create(ctx, p); err != nil {
					return err
				}
				c.log.Info("created a project found at a peer", "project", p, "peer", st.Name)
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
		}
	}
	return errors.Join(errs...)
}
