package coord

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/kind"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/txn"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/transport"
)

// Importing a repository that exists at this site (`sitesync import`,
// POST /api/v1/projects/{name}/import) makes it a replicated project. The
// origin, the site that holds it:
//
//  1. reads its refs: the direct refs under refs/ the refdb guards, outside
//     sitesync's own namespace (importable), and makes sure every object
//     they reach is there (invariant 9);
//  2. compares them with the refdb's records (seedPlan), and refuses if the
//     refdb holds any other value;
//  3. asks every placement peer what it holds (IMPORT check, then compare
//     rounds over ranges of refs when the peer's refs are not identical),
//     and refuses if a peer holds a different copy or cannot be asked;
//  4. seeds the refdb: the refs it has never written are created (old value
//     zero) in batches of at most refdb.BatchLimit refs;
//  5. tells every placement peer to copy (IMPORT copy): the peer fetches the
//     objects from the origin and moves its refs to the refdb's values
//     (catch-up), which any later catch-up would do too.
//
// Nothing changes anywhere before step 4: a refused import leaves every
// copy and the refdb as they were, and an import is idempotent, so one cut
// short is finished by running it again.

// Outcomes of an import a caller branches on.
var (
	// ErrImportRefused: another copy of the project (a placement site's
	// repository, the refdb's records) differs from the one being
	// imported, or the repository cannot be imported as it is. A
	// difference comes as *ImportConflictError. Nothing was changed.
	ErrImportRefused = errors.New("import refused")
	// ErrPeerUnreachable: a placement site could not be asked what it holds
	// of the project, so the import could not make sure it would not
	// overwrite a different copy there. Nothing was changed.
	ErrPeerUnreachable = errors.New("placement site unreachable")
)

// ImportConflictError says how another copy of a project differs from the
// one an import would make the replicated one.
type ImportConflictError struct {
	Project string
	Site    string     // the importing site
	Other   string     // the site whose copy differs; "" for the refdb
	Diff    Difference // how it differs (Want: Site's values)
	// Seeded counts the refs the import had created in the refdb before it
	// met the difference (a write racing with it); 0 when it was refused
	// before changing anything.
	Seeded int
}

// Is makes errors.Is(err, ErrImportRefused) true.
func (e *ImportConflictError) Is(t error) bool { return t == ErrImportRefused }

func (e *ImportConflictError) Error() string {
	site := "site " + e.Site
	var s string
	if e.Other == "" {
		s = fmt.Sprintf("import of %q refused: the refdb holds other values than the repository at %s: %s",
			e.Project, site, e.Diff.describe(site, "the refdb"))
	} else {
		other := "site " + e.Other
		s = fmt.Sprintf("import of %q refused: %s holds a different copy than %s: %s",
			e.Project, other, site, e.Diff.describe(site, other))
	}
	if e.Seeded > 0 {
		return s + fmt.Sprintf("; %s had been created in the refdb before", nRefs(e.Seeded))
	}
	return s + "; nothing was changed"
}

// ImportResult is a done import.
type ImportResult struct {
	Project string
	Refs    int // refs imported: the repository's refs the refdb guards
	Seeded  int // of them, created in the refdb by this import (it held the rest)
	// Found is, per placement peer, what it held before: none, empty,
	// identical or partial (some of the refs, at the same values).
	Found map[string]string
	// Peers is, per placement peer, where its copy is: copied; copying
	// (still, at the peer); or "pending: " and why (its catch-up copies it
	// once it can).
	Peers map[string]string
}

// ImportProgress is an import, or the copy of an imported project, in
// progress at this site (GET /api/v1/status, "importing").
type ImportProgress struct {
	Project string    `json:"project"`
	Role    string    `json:"role"`   // "origin": imported here; "copy": copied from Origin
	Origin  string    `json:"origin"` // the site importing it
	Phase   string    `json:"phase"`
	Refs    int       `json:"refs"` // refs the phase goes through
	Done    int       `json:"done"` // of them, done
	Started time.Time `json:"started"`
}

// Timing and size limits of an import.
const (
	// importCheckTimeout bounds one check or compare at a peer: it lists
	// every ref of the peer's repository, seconds for a million refs.
	importCheckTimeout = 2 * time.Minute
	// importCopyWait is how long the origin waits for a peer's copy before
	// it answers "copying": the copy goes on at the peer, and the caller
	// (an operator's command) should not wait for hours.
	importCopyWait = 10 * time.Minute
	// importCompareRefs and importCompareBytes bound the refs of one
	// compare message: well under mesh.max_frame (16 MiB by default)
	// whatever the ref names.
	importCompareRefs  = 16384
	importCompareBytes = 1 << 20
	// importFetchChunk is how many objects a copying peer asks for in one
	// fetch (about 2 MiB of ids): a repository of millions of refs comes
	// in several packs, each logged.
	importFetchChunk = 50000
	// importSeedTries bounds the retries of a seeding batch that met
	// writes of the same refs (adopted by a push meanwhile).
	importSeedTries = 3
)

// imports is the import bookkeeping of a coordinator. Its zero value is
// ready; mu is a leaf lock, never held across I/O.
type imports struct {
	mu      sync.Mutex
	running map[string]*ImportProgress // imports this site runs as origin
	copies  map[string]*copyRun        // copies of imported projects here
	unknown map[string]int             // repositories the refdb has no record of → their refs
}

// copyRun is a copy of an imported project at this site.
type copyRun struct {
	prog ImportProgress
	done chan struct{} // closed once refs and err are set
	refs int
	err  error
}

func (im *imports) begin(project string, prog ImportProgress) error {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.running[project] != nil {
		return fmt.Errorf("%w: an import of %q is already running at this site", ErrImportRefused, project)
	}
	if im.running == nil {
		im.running = make(map[string]*ImportProgress)
	}
	im.running[project] = &prog
	return nil
}

func (im *imports) end(project string) {
	im.mu.Lock()
	defer im.mu.Unlock()
	delete(im.running, project)
}

// phase records the progress of this site's import of project.
func (im *imports) phase(project, phase string, refs, done int) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if p := im.running[project]; p != nil {
		p.Phase, p.Refs, p.Done = phase, refs, done
	}
}

// startCopy returns the copy of project in progress here, or a new one
// (start true: the caller runs it and calls endCopy).
func (im *imports) startCopy(project, origin string) (run *copyRun, start bool) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if r := im.copies[project]; r != nil {
		return r, false
	}
	if im.copies == nil {
		im.copies = make(map[string]*copyRun)
	}
	r := &copyRun{
		prog: ImportProgress{Project: project, Role: "copy", Origin: origin, Phase: "starting", Started: time.Now().UTC()},
		done: make(chan struct{}),
	}
	im.copies[project] = r
	return r, true
}

func (im *imports) copyPhase(run *copyRun, phase string, refs, done int) {
	im.mu.Lock()
	defer im.mu.Unlock()
	run.prog.Phase, run.prog.Refs, run.prog.Done = phase, refs, done
}

func (im *imports) endCopy(project string, run *copyRun, refs int, err error) {
	im.mu.Lock()
	if im.copies[project] == run {
		delete(im.copies, project)
	}
	im.mu.Unlock()
	run.refs, run.err = refs, err
	close(run.done)
}

// setUnknown records how many refs the repository of project holds that
// the refdb has no record of at all (0: it knows the project), and reports
// whether it was recorded as unknown before.
func (im *imports) setUnknown(project string, refs int) (was bool) {
	im.mu.Lock()
	defer im.mu.Unlock()
	_, was = im.unknown[project]
	if refs == 0 {
		delete(im.unknown, project)
		return was
	}
	if im.unknown == nil {
		im.unknown = make(map[string]int)
	}
	im.unknown[project] = refs
	return was
}

// Imports lists the imports and copies of imported projects in progress
// at this site, by project.
func (c *Coordinator) Imports() []ImportProgress {
	c.imports.mu.Lock()
	out := make([]ImportProgress, 0, len(c.imports.running)+len(c.imports.copies))
	for _, p := range c.imports.running {
		out = append(out, *p)
	}
	for _, r := range c.imports.copies {
		out = append(out, r.prog)
	}
	c.imports.mu.Unlock()
	slices.SortFunc(out, func(a, b ImportProgress) int {
		return strings.Compare(a.Project+"\x00"+a.Role, b.Project+"\x00"+b.Role)
	})
	return out
}

// Unimported lists the repositories placed here whose refs the refdb has
// no record of at all, as the last catch-up found them: repositories that
// existed before sitesync, to import (`sitesync import`).
func (c *Coordinator) Unimported() []string {
	c.imports.mu.Lock()
	names := slices.Sorted(maps.Keys(c.imports.unknown))
	c.imports.mu.Unlock()
	out := []string{}
	for _, name := range names {
		if _, err := c.cfg.Repos.Root().Existing(name); err == nil && c.holds(name) {
			out = append(out, name)
		}
	}
	return out
}

// noteUnimported is catch-up's look at a project (recs: the refdb's
// records, local: the repository's refs): a repository with refs to guard
// of which the refdb has no record at all is one to import. It says so in
// the log once, when the project becomes such a one.
func (c *Coordinator) noteUnimported(project string, recs []refdb.Record, local map[string]string) {
	n := 0
	if len(recs) == 0 {
		n = len(importable(local, c.cfg.Guarded))
	}
	was := c.imports.setUnknown(project, n)
	switch {
	case n > 0 && !was:
		c.log.Warn(`repository not known to the refdb; run "sitesync import --config FILE PROJECT"`, "project", project, "refs", n)
	case n == 0 && was:
		c.log.Info("repository known to the refdb now", "project", project)
	}
}

// Import makes the repository of project at this site a replicated
// project (see the top of this file). Errors: git.ErrNotFound (no
// repository here), ErrImportRefused (as *ImportConflictError when another
// copy differs), ErrPeerUnreachable, ErrUnavailable (the refdb).
func (c *Coordinator) Import(ctx context.Context, project string) (ImportResult, error) {
	res := ImportResult{Project: project, Found: map[string]string{}, Peers: map[string]string{}}
	if err := git.ValidateName(project); err != nil {
		return res, err
	}
	if !c.holds(project) {
		return res, fmt.Errorf("%w: project %q is not placed at site %s (it is placed at %s)",
			ErrImportRefused, project, c.cfg.Site, strings.Join(c.policy(project).Sites, ", "))
	}
	repo, err := c.cfg.Repos.Open(project)
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := c.imports.begin(project, ImportProgress{Project: project, Role: "origin", Origin: c.cfg.Site, Phase: "reading refs", Started: start.UTC()}); err != nil {
		return res, err
	}
	defer c.imports.end(project)

	all, err := git.ListDirectRefs(ctx, repo.Dir)
	if err != nil {
		return res, fmt.Errorf("import %q: %w", project, err)
	}
	local := importable(all, c.cfg.Guarded)
	for _, ref := range slices.Sorted(maps.Keys(local)) {
		if err := refdb.ValidateRef(ref); err != nil {
			return res, fmt.Errorf("%w: %q: the refdb cannot guard %v", ErrImportRefused, project, err)
		}
	}
	res.Refs = len(local)
	// Invariant 9: the refdb names only values every site can apply.
	c.imports.phase(project, "checking the repository is complete", len(local), 0)
	if err := git.CheckComplete(ctx, repo.Dir, slices.Compact(slices.Sorted(maps.Values(local)))); err != nil {
		return res, fmt.Errorf("%w: the repository of %q at site %s lacks objects its refs need (see git fsck): %v", ErrImportRefused, project, c.cfg.Site, err)
	}

	c.imports.phase(project, "reading the refdb", len(local), 0)
	rctx, cancel := context.WithTimeout(ctx, refdbTimeout)
	recs, err := c.cfg.Store.List(rctx, project)
	cancel()
	if err != nil {
		return res, fmt.Errorf("%w: read the refdb's records of %q: %v", ErrUnavailable, project, err)
	}
	create, same, diff := seedPlan(local, recs, c.cfg.Guarded)
	if diff.Conflicts() {
		return res, &ImportConflictError{Project: project, Site: c.cfg.Site, Diff: diff}
	}

	peers := c.peersOf(c.policy(project))
	slices.Sort(peers)
	c.imports.phase(project, "asking placement sites what they hold", len(peers), 0)
	res.Found, err = c.checkPeers(ctx, project, local, peers)
	if err != nil {
		return res, err
	}
	c.log.Info("importing a repository", "project", project, "refs", len(local), "new_in_refdb", len(create),
		"held_by_refdb", same, "peers", fmt.Sprint(res.Found))

	// From here on the import changes the refdb: it finishes even if its
	// caller goes away (a rerun would find it done).
	sctx := context.WithoutCancel(ctx)
	res.Seeded, err = c.seed(sctx, project, repo, create)
	if err != nil {
		return res, err
	}
	// This site's own bookkeeping: the versions it now holds.
	if err := c.catchUpProject(sctx, project, nil); err != nil {
		c.log.Warn("catch up an imported project", "project", project, "error", err)
	}
	c.log.Info("imported a repository into the refdb; placement sites copy it", "project", project,
		"refs", len(local), "seeded", res.Seeded, "elapsed", time.Since(start).Round(time.Millisecond))

	c.imports.phase(project, "placement sites copying", len(peers), 0)
	res.Peers = c.copyAt(ctx, project, peers)
	// HEAD as it is here, at every placement site (head.go).
	if head, err := git.ReadHead(repo.Dir); err != nil {
		c.log.Warn("an imported project's HEAD is not a branch; set it with PUT …/head", "project", project, "error", err)
	} else if _, err := c.SetHead(ctx, project, head); err != nil {
		c.log.Warn("an imported project's HEAD was not recorded; set it with PUT …/head", "project", project, "head", head, "error", err)
	}
	return res, nil
}

// checkPeers asks every placement peer what it holds of project, and
// refuses unless each holds nothing, an empty repository, the same refs,
// or some of them at the same values.
func (c *Coordinator) checkPeers(ctx context.Context, project string, local map[string]string, peers []string) (map[string]string, error) {
	type answer struct {
		state string
		diff  Difference
		err   error
	}
	digest := refsDigest(local)
	answers := make([]answer, len(peers))
	var wg sync.WaitGroup
	for i, peer := range peers {
		wg.Go(func() {
			a := &answers[i]
			a.state, a.diff, a.err = c.checkPeer(ctx, peer, project, local, digest)
		})
	}
	wg.Wait()
	found := make(map[string]string, len(peers))
	var errs []error
	for i, peer := range peers {
		switch a := answers[i]; {
		case a.err != nil:
			errs = append(errs, fmt.Errorf("%w: site %s could not be asked what it holds of %q, so nothing was changed (import again once it is reachable): %v",
				ErrPeerUnreachable, peer, project, a.err))
		case a.state == copyDiffers:
			errs = append(errs, &ImportConflictError{Project: project, Site: c.cfg.Site, Other: peer, Diff: a.diff})
		default:
			found[peer] = a.state
		}
	}
	return found, errors.Join(errs...)
}

// checkPeer asks peer what it holds of project: none, empty, identical,
// partial, or differs (and how).
func (c *Coordinator) checkPeer(ctx context.Context, peer, project string, local map[string]string, digest string) (string, Difference, error) {
	rep, err := c.importRequest(ctx, peer, importMsg{Project: project, Op: importCheck, Refs: len(local), Digest: digest}, importCheckTimeout)
	if err != nil {
		return "", Difference{}, err
	}
	switch rep.State {
	case copyNone, copyEmpty, copyIdentical:
		return rep.State, Difference{}, nil
	case copyDiffers:
	default:
		return "", Difference{}, fmt.Errorf("site %s answered %q to a check", peer, rep.State)
	}
	var d Difference
	for _, r := range compareRanges(local, importCompareRefs, importCompareBytes) {
		rep, err := c.importRequest(ctx, peer, importMsg{Project: project, Op: importCompare, From: r.From, To: r.To, Values: r.Values}, importCheckTimeout)
		if err != nil {
			return "", Difference{}, err
		}
		if rep.State != copyCompared {
			return "", Difference{}, fmt.Errorf("site %s answered %q to a compare", peer, rep.State)
		}
		d.add(rep.Difference)
	}
	switch {
	case d.Conflicts():
		return copyDiffers, d, nil
	case d.Missing > 0:
		return copyPartial, d, nil
	}
	// The digests differed, the refs do not (any more): the same copy.
	return copyIdentical, d, nil
}

// importRequest sends an IMPORT request to peer and decodes its answer,
// retrying for up to createWait while the peer is not connected (a site
// that just started dials its peers within a second).
func (c *Coordinator) importRequest(ctx context.Context, peer string, m importMsg, timeout time.Duration) (importReplyMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	payload := encode(m)
	giveUp := time.Now().Add(createWait)
	for {
		b, err := c.cfg.Mesh.Request(ctx, peer, kind.Import, payload)
		switch {
		case err == nil:
			var rep importReplyMsg
			if err := decode(b, &rep, (*importReplyMsg).check); err != nil {
				return importReplyMsg{}, fmt.Errorf("site %s: %w", peer, err)
			}
			return rep, nil
		case errors.Is(err, transport.ErrNoHandler):
			return importReplyMsg{}, fmt.Errorf("%w (site %s runs a sitesync without import: upgrade it first)", err, peer)
		case !errors.Is(err, transport.ErrPeerUnavailable) || time.Now().After(giveUp):
			return importReplyMsg{}, err
		}
		select {
		case <-ctx.Done():
			return importReplyMsg{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// seed creates the refs of create in the refdb, in batches the backend
// takes in one transaction, and returns how many it created.
func (c *Coordinator) seed(ctx context.Context, project string, repo *git.Repo, create []refdb.Update) (int, error) {
	limit := refdb.BatchLimit(c.cfg.Store)
	seeded, through := 0, 0
	for _, b := range batches(create, limit) {
		n, err := c.seedBatch(ctx, project, repo, b)
		seeded += n
		through += len(b)
		if err != nil {
			var ce *ImportConflictError
			if errors.As(err, &ce) {
				ce.Seeded = seeded
			}
			return seeded, err
		}
		c.imports.phase(project, "seeding the refdb", len(create), through)
		if len(create) > limit {
			c.log.Info("seeding the refdb", "project", project, "refs_done", through, "refs", len(create))
		}
	}
	return seeded, nil
}

// seedBatch creates ups (old value zero) in one refdb transaction. A
// conflict means a write created some of the refs meanwhile (a push of
// this site adopting them): those the refdb now holds at this site's
// value are left out and the rest tried again; one at another value ends
// the import.
func (c *Coordinator) seedBatch(ctx context.Context, project string, repo *git.Repo, ups []refdb.Update) (int, error) {
	for try := 1; ; try++ {
		b := refdb.Batch{Txn: txn.New(c.cfg.Site, time.Now()), Site: c.cfg.Site, Updates: ups}
		cctx, cancel := context.WithTimeout(ctx, refdbTimeout)
		_, err := c.cfg.Store.CAS(cctx, project, b)
		cancel()
		var conflict *refdb.ConflictError
		switch {
		case err == nil:
			return len(ups), nil
		case errors.As(err, &conflict):
			refs := make([]string, len(conflict.Refs))
			for i, r := range conflict.Refs {
				refs[i] = r.Ref
			}
			now, err := c.localRefs(ctx, repo, refs)
			if err != nil {
				return 0, fmt.Errorf("import %q: %w", project, err)
			}
			var diff Difference
			ups, diff = reseed(ups, conflict.Refs, now)
			if diff.Conflicts() {
				return 0, &ImportConflictError{Project: project, Site: c.cfg.Site, Diff: diff}
			}
			if len(ups) == 0 {
				return 0, nil
			}
			if try >= importSeedTries {
				return 0, fmt.Errorf("%w: the refdb's records of %q keep changing under the import (writes to it meanwhile?); import again", ErrImportRefused, project)
			}
		case errors.Is(err, refdb.ErrInvalid):
			return 0, fmt.Errorf("%w: %q: %v", ErrImportRefused, project, err)
		default:
			// The outcome is unknown: the refs carry this batch's txn if
			// it was applied (all or nothing).
			rctx, cancel := context.WithTimeout(ctx, refdbTimeout)
			got, rerr := c.cfg.Store.Get(rctx, project, ups[0].Ref)
			cancel()
			if rerr == nil && len(got) == 1 && got[0].Txn == b.Txn {
				return len(ups), nil
			}
			return 0, fmt.Errorf("%w: seed %s of %q (import again to finish): %v", ErrUnavailable, nRefs(len(ups)), project, err)
		}
	}
}

// copyAt tells each placement peer to copy project now that the refdb
// holds it, waiting up to importCopyWait for each, and returns where each
// copy is.
func (c *Coordinator) copyAt(ctx context.Context, project string, peers []string) map[string]string {
	out := make(map[string]string, len(peers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, peer := range peers {
		wg.Go(func() {
			start := time.Now()
			rep, err := c.importRequest(ctx, peer, importMsg{Project: project, Op: importCopy}, importCopyWait)
			var status string
			switch {
			case err == nil:
				status = copyCopied
				c.log.Info("a placement site copied an imported project", "project", project, "peer", peer,
					"refs", rep.Refs, "elapsed", time.Since(start).Round(time.Millisecond))
			case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
				status = "copying"
				c.log.Info("a placement site is still copying an imported project; it goes on there", "project", project, "peer", peer, "waited", importCopyWait)
			default:
				status = "pending: " + shortErr(err)
				c.log.Warn("a placement site could not copy an imported project now; its catch-up copies it", "project", project, "peer", peer, "error", err)
			}
			mu.Lock()
			out[peer] = status
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// handleImport is a placement peer's side of an import.
func (c *Coordinator) handleImport(ctx context.Context, from string, payload []byte) ([]byte, error) {
	var m importMsg
	if err := decode(payload, &m, (*importMsg).check); err != nil {
		return nil, err
	}
	if !c.holds(m.Project) {
		return nil, fmt.Errorf("project %q is not placed at site %s", m.Project, c.cfg.Site)
	}
	var rep importReplyMsg
	var err error
	switch m.Op {
	case importCheck:
		rep, err = c.answerCheck(ctx, from, m)
	case importCompare:
		rep, err = c.answerCompare(ctx, m)
	case importCopy:
		rep, err = c.answerCopy(ctx, from, m.Project)
	}
	if err != nil {
		return nil, err
	}
	return encode(rep), nil
}

// importRefsHere is what this site holds of project to compare with an
// import: its importable refs, and whether it has a repository at all.
func (c *Coordinator) importRefsHere(ctx context.Context, project string) (map[string]string, bool, error) {
	repo, err := c.cfg.Repos.Open(project)
	if errors.Is(err, git.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	all, err := git.ListDirectRefs(ctx, repo.Dir)
	if err != nil {
		return nil, true, fmt.Errorf("list the refs of %q: %w", project, err)
	}
	return importable(all, c.cfg.Guarded), true, nil
}

func (c *Coordinator) answerCheck(ctx context.Context, from string, m importMsg) (importReplyMsg, error) {
	refs, exists, err := c.importRefsHere(ctx, m.Project)
	if err != nil {
		return importReplyMsg{}, err
	}
	rep := importReplyMsg{State: copyDiffers, Refs: len(refs)}
	switch {
	case !exists:
		rep.State = copyNone
	case len(refs) == 0:
		rep.State = copyEmpty
	case len(refs) == m.Refs && refsDigest(refs) == m.Digest:
		rep.State = copyIdentical
	}
	c.log.Info("a site imports a project placed here", "project", m.Project, "origin", from, "here", rep.State, "refs", len(refs))
	return rep, nil
}

func (c *Coordinator) answerCompare(ctx context.Context, m importMsg) (importReplyMsg, error) {
	refs, _, err := c.importRefsHere(ctx, m.Project)
	if err != nil {
		return importReplyMsg{}, err
	}
	want := make(map[string]string, len(m.Values))
	for _, v := range m.Values {
		want[v.Ref] = v.Value
	}
	got := make(map[string]string)
	for ref, v := range refs {
		if inRange(ref, m.From, m.To) {
			got[ref] = v
		}
	}
	return importReplyMsg{State: copyCompared, Difference: compareRefs(want, got)}, nil
}

// answerCopy copies an imported project here, or waits for the copy in
// progress. The copy runs in the background (owned by Run): an origin that
// stops waiting does not cut it short.
func (c *Coordinator) answerCopy(ctx context.Context, origin, project string) (importReplyMsg, error) {
	run, start := c.imports.startCopy(project, origin)
	if start {
		ok := c.background(func(ctx context.Context) {
			refs, err := c.copyImported(ctx, origin, project, run)
			if err != nil {
				c.log.Warn("copy of an imported project failed; catch-up retries it", "project", project, "origin", origin, "error", err)
				c.kickCatchUp()
			}
			c.imports.endCopy(project, run, refs, err)
		})
		if !ok {
			c.imports.endCopy(project, run, 0, errors.New("the site is shutting down"))
		}
	}
	select {
	case <-run.done:
		if run.err != nil {
			return importReplyMsg{}, run.err
		}
		return importReplyMsg{State: copyCopied, Refs: run.refs}, nil
	case <-ctx.Done():
		return importReplyMsg{}, ctx.Err()
	}
}

// copyImported brings project here to the refdb's values, the objects
// first, fetched from origin (the site whose records they are) in chunks,
// then the refs by catch-up. A project with nothing here yet is not served
// (requests go to a site that has it) until its copy is complete. It
// returns how many refs it moved.
func (c *Coordinator) copyImported(ctx context.Context, origin, project string, run *copyRun) (int, error) {
	start := time.Now()
	if _, err := c.openForPeer(ctx, project); err != nil {
		return 0, err
	}
	repo, err := c.cfg.Repos.Open(project)
	if err != nil {
		return 0, err
	}
	local, err := git.ListRefs(ctx, repo.Dir, "")
	if err != nil {
		return 0, fmt.Errorf("copy %q: %w", project, err)
	}
	p := c.project(project)
	if len(importable(local, c.cfg.Guarded)) == 0 && p.setPlacing(true) {
		c.log.Info("copying an imported project; requests go to a site that has it until the copy is complete", "project", project, "origin", origin)
	}
	c.imports.copyPhase(run, "reading the refdb", 0, 0)
	rctx, cancel := context.WithTimeout(ctx, refdbTimeout)
	recs, err := c.cfg.Store.List(rctx, project)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("copy %q: %w", project, err)
	}
	behind := behindRefdb(recs, local, c.cfg.Guarded, p.inflightRef)
	peers := c.byWriter(recs, append([]string{origin}, c.peersOf(c.policy(project))...))

	// The objects, in chunks of tips: each later chunk names the one
	// before as haves, so history shared between refs comes once.
	var wants, haves []string
	tipRefs := make(map[string]int) // tip → refs at it
	for _, v := range behind {
		if v.Value != refmove.ZeroID {
			if tipRefs[v.Value] == 0 {
				wants = append(wants, v.Value)
			}
			tipRefs[v.Value]++
		}
	}
	for _, v := range local {
		if len(haves) < importFetchChunk && v != refmove.ZeroID {
			haves = append(haves, v)
		}
	}
	c.log.Info("copying an imported project", "project", project, "origin", origin, "refs", len(behind), "tips", len(wants))
	done := 0
	for i := 0; i < len(wants); i += importFetchChunk {
		c.imports.copyPhase(run, "fetching objects", len(behind), done)
		part := wants[i:min(i+importFetchChunk, len(wants))]
		if err := c.ensureObjects(ctx, project, repo, part, haves, peers); err != nil {
			return 0, fmt.Errorf("copy %q: %w", project, err)
		}
		haves = part
		for _, id := range part {
			done += tipRefs[id]
		}
		if len(wants) > importFetchChunk {
			c.log.Info("copying an imported project: objects", "project", project, "refs_fetched", done, "refs", len(behind),
				"elapsed", time.Since(start).Round(time.Millisecond))
		}
	}
	c.imports.copyPhase(run, "moving refs", len(behind), 0)
	if err := c.catchUpProject(ctx, project, peers); err != nil {
		return 0, err
	}
	if p.setPlacing(false) {
		c.log.Info("serving a project newly placed here", "project", project)
	}
	c.log.Info("copied an imported project", "project", project, "origin", origin, "refs", len(behind),
		"elapsed", time.Since(start).Round(time.Millisecond))
	return len(behind), nil
}
