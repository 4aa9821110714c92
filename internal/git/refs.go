package git

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sitesync/sitesync/internal/refmove"
)

// RefUpdate moves one ref from Old to New (refmove.Update). Old =
// refmove.ZeroID means the ref must not exist; New = refmove.ZeroID deletes
// it; Old = "" skips the check of the old value (used only for refs sitesync
// does not guard).
type RefUpdate = refmove.Update

// RefUpdater runs ref transactions through one long-lived
// `git update-ref --stdin` process, so every write takes git's own ref locks.
// With an object reader (RefUpdaterOptions.Objects), Apply writes the
// common transaction — creates and updates of loose refs, checked against
// their old values, with no reflog and no hook to run — itself, through the
// same lock files (see reffast.go), and hands every other transaction to
// git whole. Safe for concurrent use; transactions run one at a time.
//
// A transaction whose context ends while update-ref holds its locks is
// rolled back by stopping the process (SIGTERM: git removes its locks).
// Should update-ref die without that cleanup (SIGKILL after stopGrace, or
// the OOM killer's), the updater removes the locks of that transaction
// itself (see removeLocks), so that the next write of its refs does not fail
// on them.
type RefUpdater struct {
	p    proc
	fast *fastRefs // nil: every transaction goes to git

	// Guarded by p.mu.
	held   *heldLocks // the transaction update-ref may hold locks for
	gitDir string     // where the lock files are, once resolved

	fastTxns, gitTxns atomic.Uint64
	lastFallback      atomic.Pointer[string] // why the last transaction went to git
}

// RefUpdaterOptions configures a RefUpdater.
type RefUpdaterOptions struct {
	// Env is added to the environment of the git processes (for example to
	// tell sitesync's own reference-transaction hook that this write is
	// already decided).
	Env []string
	// Objects, when set, turns on Apply's fast path: it asks Objects
	// whether each new object exists (and is a commit, for a branch), the
	// check git update-ref makes before writing a ref.
	Objects *CatFile
	// SkipHooks says that the repository's reference-transaction hook lets
	// every write of this updater through unseen (sitesync's own hook does,
	// for writes carrying SITESYNC_APPLYING=1), so the fast path may write
	// refs without running it. Otherwise a repository with the hook sends
	// every transaction to git.
	SkipHooks bool
}

// NewRefUpdater returns an updater for the repository at dir that runs
// every transaction through git. env is added to the process's environment.
func NewRefUpdater(dir string, env ...string) *RefUpdater {
	return NewRefUpdaterOpts(dir, RefUpdaterOptions{Env: env})
}

// NewRefUpdaterOpts returns an updater for the repository at dir.
func NewRefUpdaterOpts(dir string, opts RefUpdaterOptions) *RefUpdater {
	u := &RefUpdater{p: proc{dir: dir, args: []string{"update-ref", "--stdin"}, env: opts.Env}}
	u.p.dirty = u.removeLocks
	if opts.Objects != nil {
		u.fast = &fastRefs{dir: dir, env: opts.Env, skipHooks: opts.SkipHooks, objects: opts.Objects}
	}
	return u
}

// Prepared is a transaction whose ref locks are held. Exactly one of Commit
// or Abort must be called; until then other transactions of the same updater
// wait.
type Prepared struct {
	u    *RefUpdater
	done bool
}

// Prepare locks every ref of the batch and checks its old value. On success
// the locks are held until Commit or Abort. On failure nothing has changed
// and the error says which ref did not match.
func (u *RefUpdater) Prepare(ctx context.Context, updates []RefUpdate) (*Prepared, error) {
	if len(updates) == 0 {
		return nil, errors.New("empty ref transaction")
	}
	for _, up := range updates {
		if err := checkUpdate(up); err != nil {
			return nil, err
		}
	}
	u.p.mu.Lock()
	u.held = newHeldLocks(updates)
	err := u.p.exchange(ctx,
		func(w *bufio.Writer) error {
			w.WriteString("start\n")
			for _, up := range updates {
				if up.Old == "" {
					fmt.Fprintf(w, "update %s %s\n", up.Ref, up.New)
				} else {
					fmt.Fprintf(w, "update %s %s %s\n", up.Ref, up.New, up.Old)
				}
			}
			_, err := w.WriteString("prepare\n")
			return err
		},
		func(r *bufio.Reader) error {
			if err := expect(r, "start: ok"); err != nil {
				return err
			}
			return expect(r, "prepare: ok")
		})
	if err == nil && u.p.live == nil {
		// Prepared, then stopped as ctx ended: the locks went with it.
		err = ctx.Err()
	}
	if err != nil {
		u.held = nil
		u.p.mu.Unlock()
		return nil, fmt.Errorf("prepare ref transaction: %w", err)
	}
	return &Prepared{u: u}, nil
}

// Commit makes the prepared updates visible and releases the locks.
func (t *Prepared) Commit(ctx context.Context) error { return t.finish(ctx, "commit") }

// Abort drops the prepared updates and releases the locks.
func (t *Prepared) Abort(ctx context.Context) error { return t.finish(ctx, "abort") }

func (t *Prepared) finish(ctx context.Context, verb string) error {
	if t.done {
		return fmt.Errorf("ref transaction already finished")
	}
	t.done = true
	u := t.u
	defer u.p.mu.Unlock()
	defer func() { u.held = nil }()
	u.held.until = time.Now()
	if err := ctx.Err(); err != nil {
		// exchange would not start; the transaction must not stay
		// prepared, its locks held, in an idle process: stopping
		// update-ref rolls it back.
		return fmt.Errorf("%s ref transaction: %w", verb, errors.Join(err, u.p.stop()))
	}
	err := u.p.exchange(ctx,
		func(w *bufio.Writer) error { _, err := w.WriteString(verb + "\n"); return err },
		func(r *bufio.Reader) error { return expect(r, verb+": ok") })
	if err != nil {
		return fmt.Errorf("%s ref transaction: %w", verb, err)
	}
	return nil
}

// Apply runs a whole transaction: all of it or none of it. A ref not at its
// expected old value fails it with a *StaleRefError (ErrStaleRef) when the
// fast path found it, with git's *Error otherwise; either names the ref.
func (u *RefUpdater) Apply(ctx context.Context, updates []RefUpdate) error {
	if u.fast != nil && len(updates) > 0 {
		for _, up := range updates {
			if err := checkUpdate(up); err != nil {
				return err
			}
		}
		u.p.mu.Lock()
		reason, err := u.fast.apply(ctx, updates)
		if u.fast.reread {
			// git reads its configuration once, when it starts: the
			// process must not write with one older than ours.
			_ = u.p.stop() // idle: no transaction, nothing of its to clean up
		}
		u.p.mu.Unlock()
		if reason == "" {
			u.fastTxns.Add(1)
			return err
		}
		u.gitTxns.Add(1)
		u.lastFallback.Store(&reason)
	}
	tx, err := u.Prepare(ctx, updates)
	if err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// Close ends the process.
func (u *RefUpdater) Close() error { return u.p.close() }

// RefStats counts the transactions Apply ran on each path.
type RefStats struct {
	Fast, Git    uint64
	LastFallback string // why the last transaction of the fast path's updater went to git
}

// Stats says how many of Apply's transactions took the fast path and how
// many went to git (only those of an updater with a fast path are counted).
func (u *RefUpdater) Stats() RefStats {
	s := RefStats{Fast: u.fastTxns.Load(), Git: u.gitTxns.Load()}
	if r := u.lastFallback.Load(); r != nil {
		s.LastFallback = *r
	}
	return s
}

func expect(r *bufio.Reader, want string) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("waiting for %q: %w", want, err)
	}
	if got := strings.TrimSuffix(line, "\n"); got != want {
		return fmt.Errorf("unexpected reply %q, want %q", got, want)
	}
	return nil
}

func checkUpdate(up RefUpdate) error {
	if !strings.HasPrefix(up.Ref, "refs/") || strings.ContainsAny(up.Ref, " \n\r\x00") {
		return fmt.Errorf("invalid ref name %q", up.Ref)
	}
	if !IsID(up.New) || (up.Old != "" && !IsID(up.Old)) {
		return fmt.Errorf("ref %s: invalid object id in update %q -> %q", up.Ref, up.Old, up.New)
	}
	return nil
}

// IsID reports whether s is a full hexadecimal SHA-1 object id.
func IsID(s string) bool {
	if len(s) != len(refmove.ZeroID) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
