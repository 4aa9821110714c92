package coord

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sitesync/sitesync/internal/hook"
	"github.com/sitesync/sitesync/internal/kind"
	"github.com/sitesync/sitesync/internal/txn"
	"github.com/sitesync/sitesync/packsync"
	"github.com/sitesync/sitesync/refdb"
)

// errUndecided is the outcome of a push that ended before its decision.
var errUndecided = errors.New("push ended before its decision")

// Push is one receive-pack request in progress at its origin.
type Push struct {
	c      *Coordinator
	w      *write
	parsed packsync.Push
	// Env is for the git receive-pack process: it ties the hooks to this
	// write.
	Env []string
	// Body is what receive-pack reads: the client's request, whose pack
	// bytes are teed to the placement peers as git reads them.
	Body io.Reader
}

// BeginPush starts the write of a push to project whose request body is
// body. Run git receive-pack with Push.Env on Push.Body, then call Finish.
func (c *Coordinator) BeginPush(ctx context.Context, project string, body io.Reader) (*Push, error) {
	repo, err := c.cfg.Repos.Open(project)
	if err != nil {
		return nil, err
	}
	w := &write{id: txn.New(c.cfg.Site, time.Now()), project: project, policy: c.policy(project), dir: repo.Dir, push: true}
	p := &Push{c: c, w: w}
	br := bufio.NewReaderSize(body, 64<<10)
	parsed, err := packsync.ParsePush(br)
	p.parsed = parsed
	// git's own rule: a push is atomic only when the client asks.
	w.perRef = !slices.Contains(parsed.Caps, "atomic")
	env := c.cfg.Env
	if w.perRef && c.cfg.PerRefEnv != nil {
		env = c.cfg.PerRefEnv
	}
	p.Env = append([]string{hook.EnvTxn + "=" + w.id, hook.EnvDecided + "=" + c.decidedMarker(w.id)}, env...)
	head := bytes.NewReader(parsed.Head)
	peers := c.peersOf(w.policy)
	switch {
	case err != nil:
		// git gives the client the real error, or takes a push we cannot
		// tee; the pack then reaches the peers from the repository.
		if !errors.Is(err, packsync.ErrNotTeeable) {
			c.log.Debug("push request not parsed", "project", project, "error", err)
		}
		w.ship = true
		p.Body = io.MultiReader(head, br)
	case parsed.HasPack && len(peers) > 0:
		w.tee = packsync.StartTee(ctx, c.cfg.Mesh, kind.Pack, peers, packsync.Header{Project: project, Txn: w.id}, c.cfg.Log)
		p.Body = io.MultiReader(head, &teeReader{r: br, tee: w.tee})
	default:
		p.Body = io.MultiReader(head, br)
	}
	for _, cmd := range parsed.Commands {
		w.updates = append(w.updates, Update{Ref: cmd.Ref, Old: cmd.Old, New: cmd.New})
	}
	// From now until the push ends, a peer's write to one of its refs waits:
	// the push then meets the refdb's verdict, not a ref moved under it.
	c.project(project).begin(w.id, w.updates)
	c.mu.Lock()
	c.pushes[w.id] = w
	c.mu.Unlock()
	return p, nil
}

// Finish ends the push: a write that was never decided (git refused the
// pack, the client went away) is dropped at the peers.
func (p *Push) Finish() {
	c, w := p.c, p.w
	c.mu.Lock()
	delete(c.pushes, w.id)
	c.mu.Unlock()
	proj := c.project(w.project)
	proj.end(w.id)
	// receive-pack has exited: the refs it moved are on disk.
	proj.notify()
	w.once.Do(func() { w.err = errUndecided })
	_ = os.Remove(c.decidedMarker(w.id))
	if w.err != nil {
		if w.tee != nil {
			c.abortAt(w, c.peersOf(w.policy))
		}
		return
	}
	ups := slices.DeleteFunc(w.updatesCopy(), func(u Update) bool { return w.res.Refused[u.Ref] != nil })
	c.announce(Moved{Project: w.project, Txn: w.id, Own: true, Moves: movesOf(ups, w.res.Versions, c.cfg.Site)})
}

// decidedMarker is the file of hook.EnvDecided for the push id: it exists
// while the push runs once every one of its refs was decided.
func (c *Coordinator) decidedMarker(id string) string {
	return filepath.Join(c.cfg.State, "decided", id)
}

// markDecided creates the push's decidedMarker when every ref was
// decided: git's later "prepared" calls of the push are then answered by
// the hook script alone. Without it they ask the daemon, which answers the
// same (slower).
func (c *Coordinator) markDecided(w *write) {
	if w.err != nil || len(w.res.Refused) > 0 {
		return
	}
	path := c.decidedMarker(w.id)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err == nil {
		_ = os.WriteFile(path, nil, 0o600)
	}
}

// Rejection is the receive-pack response that tells the client why
// sitesync refused the push, when it did: git dies without a word when the
// reference-transaction hook refuses, so the front door sends this instead.
func (p *Push) Rejection() ([]byte, bool) {
	w := p.w
	w.once.Do(func() { w.err = errUndecided })
	if w.err == nil || errors.Is(w.err, errUndecided) || len(p.parsed.Commands) == 0 {
		return nil, false
	}
	return p.parsed.Rejection(strings.Join(reject(w.err).Lines, "\n")), true
}

// teeReader hands what git reads of the pack to the tee as well.
type teeReader struct {
	r   io.Reader
	tee *packsync.Tee
	end bool
}

func (t *teeReader) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	if n > 0 {
		_, _ = t.tee.Write(b[:n])
	}
	if err != nil && !t.end {
		t.end = true
		if errors.Is(err, io.EOF) {
			t.tee.Close()
		} else {
			t.tee.Abort()
		}
	}
	return n, err
}

// Hook answers sitesync's git hooks. For a push through the front door the
// write is known by its transaction id; pre-receive checks it early against
// the refdb, the first reference-transaction "prepared" decides it (git
// holds the ref locks then), and later "prepared" calls of the same push
// (git runs one per ref for a non-atomic push) get the same decision. An
// atomic push is all or nothing across its refs. A non-atomic one is
// decided ref by ref (cas) at its first "update" call (git's per-ref hook,
// run before each ref's transaction), each ref's "update" call answered
// with its own verdict. A hook with no transaction id
// comes from a git process sitesync did not start (an installed hook): its
// "prepared" call is decided on its own.
func (c *Coordinator) Hook(ctx context.Context, req hook.Request) hook.Response {
	// git reports a symbolic ref (HEAD) moving with the branch it names;
	// only the branch is written, and only it is replicated.
	ups := make([]Update, 0, len(req.Updates))
	for _, u := range req.Updates {
		if strings.HasPrefix(u.Ref, "refs/") {
			ups = append(ups, Update{Ref: u.Ref, Old: u.Old, New: u.New})
		}
	}
	if len(ups) == 0 {
		return hook.Response{OK: true}
	}
	c.mu.Lock()
	w := c.pushes[req.Txn]
	c.mu.Unlock()
	switch {
	case req.Hook == hook.PreReceive && w != nil:
		return c.preReceive(ctx, w, ups)
	case req.Hook == hook.PreReceive:
		return hook.Response{OK: true}
	case req.Hook == hook.UpdateHook && (w == nil || !w.perRef):
		// An atomic push is decided at "prepared", under git's locks.
		return hook.Response{OK: true}
	case req.Hook == hook.UpdateHook:
		// A non-atomic push is decided at its first ref's "update" call:
		// git then refuses just the refs the refdb did not take (a
		// refusing reference-transaction hook would make it die; the
		// daemon's non-atomic pushes run without one, see
		// hook.PerRefPushHooks).
		r := c.verdict(ctx, w, ups)
		if !r.OK && w.err != nil && !definite(w.err) {
			// Nobody knows whether the refdb took the write: git must not
			// report its refs as refused ("hook declined"). receive-pack
			// is stopped instead; the client reads the reason
			// (Rejection) or a dropped connection, never a refusal.
			w.stop()
		}
		return r
	case req.Phase != hook.Prepared:
		// committed/aborted: git ignores the answer (the hook scripts
		// answer them without asking); readers are woken when the push ends.
		return hook.Response{OK: true}
	case w == nil:
		return c.hookWrite(ctx, req.GitDir, ups)
	}
	return c.verdict(ctx, w, ups)
}

// definite reports whether a write that failed with err was surely not
// decided: refused by the refdb, its rule not met, or invalid. Any other
// failure (the refdb did not answer) leaves its outcome unknown.
func definite(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, ErrNoQuorum) || errors.Is(err, ErrInvalid)
}

// Context is the context to run the push's git receive-pack under: the
// coordinator ends it when the push must end without git's report (its
// outcome is unknown, see Hook).
func (p *Push) Context(parent context.Context) context.Context {
	ctx, cancel := context.WithCancel(parent)
	p.w.mu.Lock()
	p.w.stopGit = cancel
	p.w.mu.Unlock()
	return ctx
}

// stop ends the push's receive-pack, if it runs under Push.Context.
func (w *write) stop() {
	w.mu.Lock()
	stop := w.stopGit
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// verdict decides the push w (once: its first hook call that needs the
// decision takes it) and answers for its refs ups.
func (c *Coordinator) verdict(ctx context.Context, w *write, ups []Update) hook.Response {
	w.once.Do(func() {
		w.res, w.err = c.decide(ctx, w)
		c.markDecided(w)
	})
	if w.err != nil {
		return reject(w.err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, u := range ups {
		if !containsUpdate(w.updates, u) {
			return reject(fmt.Errorf("%s -> %s was not part of the decided push", u.Ref, u.New))
		}
		if err := w.res.Refused[u.Ref]; err != nil {
			return reject(err)
		}
	}
	return hook.Response{OK: true}
}

func (c *Coordinator) preReceive(ctx context.Context, w *write, ups []Update) hook.Response {
	w.mu.Lock()
	w.updates = ups
	w.mu.Unlock()
	if err := validateWrite(ups, nil); err != nil {
		return reject(err)
	}
	if err := notReserved(ups); err != nil {
		return reject(err)
	}
	if err := c.tooLarge(w, ups); err != nil {
		return reject(err)
	}
	c.project(w.project).begin(w.id, ups)
	if err := c.checkLocal(ctx, w.project, ups); err != nil {
		return reject(err)
	}
	return hook.Response{OK: true}
}

// checkLocal compares a push's old values with the refs here before git
// locks them: a ref that moved since the client read it was moved by a
// peer's write, and the user is told so (git would only say it cannot lock
// the ref). It reads local refs only: no round trip.
func (c *Coordinator) checkLocal(ctx context.Context, project string, ups []Update) error {
	repo, err := c.cfg.Repos.Open(project)
	if err != nil {
		return err
	}
	p := c.project(project)
	refs := make([]string, len(ups))
	for i, u := range ups {
		refs[i] = u.Ref
	}
	curs, err := c.localRefs(ctx, repo, refs)
	if err != nil {
		return err
	}
	var moved []refdb.RefConflict
	for i, u := range ups {
		if cur := curs[i]; cur != u.Old {
			p.mu.Lock()
			rec := refdb.Record{Ref: u.Ref, Value: cur, Version: max(p.applied[u.Ref], 1), Site: p.writers[u.Ref]}
			p.mu.Unlock()
			moved = append(moved, refdb.RefConflict{Ref: u.Ref, Want: u.Old, Current: rec})
		}
	}
	if len(moved) > 0 {
		return &ConflictError{Project: project, Refs: moved}
	}
	return nil
}

// hookWrite decides a write seen only by an installed hook.
func (c *Coordinator) hookWrite(ctx context.Context, gitDir string, ups []Update) hook.Response {
	project, err := c.projectOf(gitDir)
	if err != nil {
		return reject(err)
	}
	w := c.localWrite(project, gitDir, ups)
	p := c.project(project)
	p.begin(w.id, ups)
	defer p.end(w.id)
	res, err := c.decide(ctx, w)
	if err != nil {
		return reject(err)
	}
	// git moves the refs once the hook says yes.
	c.announce(Moved{Project: project, Txn: w.id, Own: true, Moves: movesOf(ups, res.Versions, c.cfg.Site)})
	return hook.Response{OK: true}
}

func containsUpdate(ups []Update, u Update) bool {
	for _, x := range ups {
		if x.Ref == u.Ref && x.New == u.New {
			return true
		}
	}
	return false
}

// reject is the hook's answer to a write that cannot go ahead, written for
// the git user.
func reject(err error) hook.Response {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, ErrInvalid.Error()+": ")
	if errors.Is(err, ErrUnavailable) {
		// The refdb may yet have taken it: not a refusal.
		return hook.Response{Lines: []string{"sitesync: not confirmed, it may still take effect (fetch to see): " + msg}}
	}
	return hook.Response{Lines: []string{"sitesync: rejected: " + msg}}
}
