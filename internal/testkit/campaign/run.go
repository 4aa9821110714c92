package campaign

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/sitesync/sitesync/bench/link"
	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/refdb"
	refdbetcd "github.com/sitesync/sitesync/refdb/etcd"
)

// Project is the project every schedule writes: a name with a slash, as
// Gerrit's are, so URL escaping is on the path too.
const Project = "campaign/core"

// ConvergeBound is how long after the last fault is healed every site must
// hold exactly the refdb's values, with empty journals and /readyz 200
// (invariants 6 and 10). A site restarted by the last fault is caught up
// within seconds on this machine; the rest is room for a loaded 2-core CI
// machine and a prepare timing out.
const ConvergeBound = 90 * time.Second

// replTimeout is replication.timeout: short, so a write that cannot reach
// its quorum is refused quickly, long enough for a vote on a loaded machine.
const replTimeout = 3 * time.Second

// opTimeout bounds one client request (a push, an API write). A request to
// a paused site waits for the pause; one to a site cut off from etcd waits
// for the refdb's own timeouts. Past this the client gives up and the
// write counts as failed (outcome unknown).
const opTimeout = 45 * time.Second

// setupWait bounds the set-up: every site ready, the project created
// everywhere, the first branches replicated.
const setupWait = 60 * time.Second

// pollEvery is how often the convergence and set-up loops look again.
const pollEvery = 250 * time.Millisecond

// requestTimeout bounds one look at a site or at etcd (GET /readyz, GET
// /api/v1/status, a refdb List): each answers in milliseconds on loopback;
// a site that does not answer in this long is reported, not waited for.
const requestTimeout = 5 * time.Second

// checkTimeout bounds the checks after convergence: git fsck of a small
// repository, reading a few hundred revisions back from etcd.
const checkTimeout = time.Minute

// Config says where and how a schedule runs.
type Config struct {
	// Dir holds the cluster (each site's repos, state, config and
	// serve.log; etcd's data) and the client's repository. Required; Run
	// leaves it for the caller to inspect or remove.
	Dir string
	// Binary is the sitesync binary; "" builds ./cmd/sitesync (see
	// internal/testkit/cluster).
	Binary string
	// Logf, if set, gets progress lines.
	Logf func(format string, args ...any)
	// ObserveEvery is how often each site's refs are read (default
	// observeEvery).
	ObserveEvery time.Duration
	// ConvergeBound is how long sites get to converge once every fault is
	// healed (default ConvergeBound).
	ConvergeBound time.Duration
	// Tamper, if set, is called after each operation: a test breaks an
	// invariant behind sitesync's back with it, to prove that the campaign
	// sees it. nil in a campaign.
	Tamper func(ctx context.Context, op int, c *cluster.Cluster) error
}

// run is one schedule being carried out.
type run struct {
	plan Plan
	cfg  Config
	c    *cluster.Cluster
	git  *gitRunner
	cl   *client
	http *http.Client

	prog progress

	mu         sync.Mutex // guards the fields below
	writes     []Write    // acknowledged
	refusals   []Write    // refused before the decision
	counts     Counts
	faults     []string
	violations []Violation
	errors     []string
}

func (r *run) logf(format string, args ...any) {
	if r.cfg.Logf != nil {
		r.cfg.Logf("seed %d: "+format, append([]any{r.plan.Seed}, args...)...)
	}
}

// fail records something the harness could not do.
func (r *run) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.logf("harness error: %s", msg)
	r.mu.Lock()
	r.errors = append(r.errors, msg)
	r.mu.Unlock()
}

func (r *run) violate(v Violation) {
	r.logf("violation: %s", v)
	r.mu.Lock()
	r.violations = append(r.violations, v)
	r.mu.Unlock()
}

// Run carries out one schedule on a fresh 3-site cluster and checks it. The
// error is for a schedule that could not start (no cluster, no git);
// everything found later is in the Report. ctx bounds the whole run, but
// every fault is healed and the cluster closed even when it ends early.
func Run(ctx context.Context, p Plan, cfg Config) (*Report, error) {
	start := time.Now()
	if cfg.Dir == "" {
		return nil, fmt.Errorf("campaign: Config.Dir is required")
	}
	if cfg.ConvergeBound == 0 {
		cfg.ConvergeBound = ConvergeBound
	}
	if cfg.ObserveEvery == 0 {
		cfg.ObserveEvery = observeEvery
	}
	g, err := newGitRunner(filepath.Join(cfg.Dir, "home"))
	if err != nil {
		return nil, err
	}
	r := &run{plan: p, cfg: cfg, git: g, http: &http.Client{}}
	r.prog.init()
	r.logf("%s", p)

	cctx, cancel := context.WithTimeout(ctx, setupWait)
	defer cancel()
	r.c, err = cluster.New(cctx, cluster.Options{
		Sites: len(Sites), Mode: p.Mode, Acks: p.Acks, Timeout: replTimeout,
		Link:   &link.Profile{Delay: p.Delay},
		Binary: cfg.Binary,
		Dir:    filepath.Join(cfg.Dir, "cluster"),
	})
	if err != nil {
		return nil, err
	}
	defer r.c.Close() // on the way out early; the end of a run closes it and judges how
	if r.cl, err = newClient(ctx, g, filepath.Join(cfg.Dir, "client.git"), p.Seed); err != nil {
		return nil, err
	}
	if err := r.setup(ctx); err != nil {
		return nil, err
	}

	obs := newObserver(r)
	octx, stopObserving := context.WithCancel(context.Background())
	observed := make(chan struct{})
	go func() { defer close(observed); obs.run(octx, cfg.ObserveEvery) }()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.injectFaults(ctx) }()
	for i, op := range p.Ops {
		if ctx.Err() != nil {
			break
		}
		r.prog.set(i)
		select {
		case <-time.After(op.Pause):
		case <-ctx.Done():
		}
		r.do(ctx, i, op)
		if cfg.Tamper != nil {
			if err := cfg.Tamper(ctx, i, r.c); err != nil {
				r.fail("tamper after op %d: %v", i, err)
			}
		}
	}
	r.prog.set(len(p.Ops))
	wg.Wait() // every fault healed
	healed := time.Now()
	r.logf("ops done and faults healed after %v", healed.Sub(start).Round(time.Millisecond))

	rep := &Report{Plan: p}
	rep.Converged = r.converge(ctx)
	r.fsck(ctx)

	stopObserving()
	<-observed
	r.judge(ctx, obs.observations())
	// Every serve is asked to stop (SIGTERM): one that does not exit 0 in
	// time is stuck too.
	if err := r.c.Close(); err != nil {
		r.violate(Violation{Kind: Stuck, Detail: fmt.Sprintf("shutting the cluster down: %v", err)})
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	rep.Writes, rep.Faults = r.counts, r.faults
	rep.Violations, rep.Errors = r.violations, r.errors
	rep.Observations = len(obs.observations())
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// setup waits for every site, creates the project, pushes the first
// branches through a and waits until every site has them.
func (r *run) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, setupWait)
	defer cancel()
	for _, s := range r.c.Sites() {
		if err := r.waitReady(ctx, s); err != nil {
			return err
		}
	}
	a := r.c.Site(Sites[0])
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.URL+"/api/v1/projects/"+url.PathEscape(Project), nil)
	if err != nil {
		return err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("create project: %w", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("create project: %s: %s", resp.Status, b)
	}
	for _, s := range r.c.Sites() {
		if err := poll(ctx, func() bool { _, err := os.Stat(filepath.Join(repoDir(s), "HEAD")); return err == nil }); err != nil {
			return fmt.Errorf("project not created at %s: %w", s.Name, err)
		}
	}

	root, err := r.cl.commits(ctx, "", 1, "root")
	if err != nil {
		return err
	}
	var specs []string
	want := map[string]string{}
	for _, br := range initialBranches {
		c, err := r.cl.commits(ctx, root, 1, "initial "+br)
		if err != nil {
			return err
		}
		specs = append(specs, c+":refs/heads/"+br)
		want["refs/heads/"+br] = c
	}
	if n := r.push(ctx, "setup", a, specs...); n != len(specs) {
		return fmt.Errorf("set-up push of %v at a: %d of %d refs taken", initialBranches, n, len(specs))
	}
	for _, s := range r.c.Sites() {
		var got map[string]string
		err := poll(ctx, func() bool {
			got, _ = r.git.refs(ctx, repoDir(s))
			for ref, v := range want {
				if got[ref] != v {
					return false
				}
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("set-up branches not replicated to %s: have %v, want %v", s.Name, got, want)
		}
	}
	return nil
}

// repoDir is the project's repository at a site.
func repoDir(s *cluster.Site) string { return filepath.Join(s.Repos, Project+".git") }

// poll calls f until it returns true or ctx ends.
func poll(ctx context.Context, f func() bool) error {
	for {
		if f() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// get returns the status and body of GET url, with a timeout of its own
// (ctx's cancellation is not passed on: a look is whole or not at all).
func (r *run) get(ctx context.Context, url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (r *run) waitReady(ctx context.Context, s *cluster.Site) error {
	var last string
	err := poll(ctx, func() bool {
		code, b, err := r.get(ctx, s.URL+"/readyz")
		last = fmt.Sprintf("%d %s %v", code, b, err)
		return code == http.StatusOK
	})
	if err != nil {
		return fmt.Errorf("site %s not ready: %s: %w", s.Name, last, err)
	}
	return nil
}

// siteStatus is the part of GET /api/v1/status the campaign reads.
type siteStatus struct {
	Queues struct {
		Outbound int `json:"outbound"`
		Prepared int `json:"prepared"`
	} `json:"queues"`
}

// converge waits until every site holds exactly the refdb's values, its
// journals are empty and /readyz answers 200, up to cfg.ConvergeBound; on
// the bound it records what was still wrong. It returns how long it took.
// Each look has timeouts of its own, so the last look before the bound is
// a whole one, not one cut short by it.
func (r *run) converge(ctx context.Context) time.Duration {
	start := time.Now()
	deadline := start.Add(r.cfg.ConvergeBound)
	store, err := refdbetcd.Open(ctx, []string{r.c.Etcd().Addr}, refdbetcd.Options{Prefix: refdbPrefix})
	if err != nil {
		r.fail("open refdb: %v", err)
		return 0
	}
	defer store.Close()
	lastLog := start
	for {
		pending := r.divergence(ctx, store)
		took := time.Since(start)
		if len(pending) == 0 {
			r.logf("converged %v after the last heal", took.Round(time.Millisecond))
			return took
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			for _, v := range pending {
				v.Detail = fmt.Sprintf("still after %v: %s", took.Round(time.Second), v.Detail)
				r.violate(v)
			}
			return took
		}
		if time.Since(lastLog) >= convergeLogEvery {
			lastLog = time.Now()
			r.logf("not converged after %v: %d differences, first: %s", took.Round(time.Second), len(pending), pending[0])
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollEvery):
		}
	}
}

// convergeLogEvery is how often a slow convergence says what it waits for.
const convergeLogEvery = 10 * time.Second

// divergence is everything that keeps the cluster from having converged
// now: refs that differ from the refdb, a /readyz not 200, a journal not
// empty.
func (r *run) divergence(ctx context.Context, store *refdbetcd.Store) []Violation {
	var pending []Violation
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	recs, err := store.List(lctx, Project)
	cancel()
	if err != nil {
		return []Violation{{Kind: Stuck, Detail: fmt.Sprintf("refdb list: %v", err)}}
	}
	for _, s := range r.c.Sites() {
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), observeTimeout)
		local, err := r.git.refs(gctx, repoDir(s))
		cancel()
		if err != nil {
			pending = append(pending, Violation{Kind: Diverged, Site: s.Name, Detail: err.Error()})
			continue
		}
		pending = append(pending, Converged(s.Name, recs, local)...)
		if code, b, err := r.get(ctx, s.URL+"/readyz"); code != http.StatusOK {
			pending = append(pending, Violation{Kind: Stuck, Site: s.Name, Detail: fmt.Sprintf("/readyz: %d %s %v", code, strings.TrimSpace(string(b)), err)})
		}
		code, b, err := r.get(ctx, s.URL+"/api/v1/status")
		var st siteStatus
		if code == http.StatusOK {
			err = json.Unmarshal(b, &st)
		}
		switch {
		case code != http.StatusOK || err != nil:
			pending = append(pending, Violation{Kind: Stuck, Site: s.Name, Detail: fmt.Sprintf("/api/v1/status: %d %v", code, err)})
		case st.Queues.Outbound != 0 || st.Queues.Prepared != 0:
			pending = append(pending, Violation{Kind: Stuck, Site: s.Name, Detail: fmt.Sprintf(
				"journal not empty: outbound %d, prepared %d", st.Queues.Outbound, st.Queues.Prepared)})
		}
	}
	return pending
}

// fsck runs git fsck --strict at every site.
func (r *run) fsck(ctx context.Context) {
	for _, s := range r.c.Sites() {
		fctx, cancel := context.WithTimeout(ctx, checkTimeout)
		out, err := r.git.run(fctx, repoDir(s), nil, "fsck", "--strict", "--no-dangling", "--no-progress")
		cancel()
		if err != nil {
			r.violate(Violation{Kind: Fsck, Site: s.Name, Detail: fmt.Sprintf("%v %s", err, strings.TrimSpace(out))})
		}
	}
}

// judge reads the refdb's history and checks it against the acknowledged
// writes and the observations.
func (r *run) judge(ctx context.Context, obs []Observation) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{r.c.Etcd().Endpoint}, DialTimeout: requestTimeout, Logger: zap.NewNop()})
	if err != nil {
		r.fail("etcd client: %v", err)
		return
	}
	defer cli.Close()
	h, err := ReadHistory(ctx, cli, refdbPrefix, Project)
	if err != nil {
		r.fail("%v", err)
		return
	}
	// The history's last values are the store's own List, or this
	// package's key layout is not the refdb's.
	store := refdbetcd.New(cli, refdbetcd.Options{Prefix: refdbPrefix})
	recs, err := store.List(ctx, Project)
	if err != nil {
		r.fail("refdb list: %v", err)
		return
	}
	cur := h.Current()
	if len(recs) != len(cur) || !slices.EqualFunc(recs, cur, func(x, y refdb.Record) bool {
		return x.Ref == y.Ref && x.Value == y.Value && x.Version == y.Version
	}) {
		r.fail("refdb history does not end at the store's List: %d records listed, %d keys read", len(recs), len(cur))
		return
	}
	r.mu.Lock()
	in := Input{Required: r.plan.Required(), History: h, Writes: slices.Clone(r.writes), Refusals: slices.Clone(r.refusals), Observations: obs}
	r.mu.Unlock()
	writes := 0
	for _, recs := range h {
		writes += len(recs)
	}
	r.logf("refdb history: %d refs, %d writes; %d acknowledged writes, %d refused, %d observations", len(h), writes, len(in.Writes), len(in.Refusals), len(obs))
	for _, v := range Check(in) {
		r.violate(v)
	}
}
