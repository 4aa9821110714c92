package sitesync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sitesync/sitesync/bench/link"
	"github.com/sitesync/sitesync/bench/workload"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/testkit/cluster"
)

// Modes and the Target names of each.
const (
	Async  = "async"
	Quorum = "quorum"
	Sync   = "sync"

	namePrefix = "sitesync/"
)

// Modes are the replication modes a Factory exists for, in run order.
var Modes = []string{Async, Quorum, Sync}

// Name is the Target name of mode: "sitesync/quorum".
func Name(mode string) string { return namePrefix + mode }

// SeedBatch is the most refs one seeding push carries: a push is one refdb
// CAS batch, and etcd takes at most 128 operations per transaction (its
// default --max-txn-ops).
const SeedBatch = 100

// WriteTimeout is replication.timeout of the bench clusters: how long a
// write waits for its ack rule. A 256 MiB pack must be received and indexed
// at a peer before it votes, which takes seconds on a small machine; the
// bench measures latency, so a write should not fail on serve's default 10s.
const WriteTimeout = time.Minute

// seedTimeout bounds the wait for every site to hold the seed. A corpus of
// ~5,600 refs is ~60 pushes.
const seedTimeout = 10 * time.Minute

// Config is what every sitesync Target needs.
type Config struct {
	Topology workload.Topology
	Git      *workload.Git
	// Binary is the sitesync executable the sites run; "" builds
	// ./cmd/sitesync of the enclosing module (tests).
	Binary string
	// Dir is scratch space; each started Target makes a directory of its
	// own in it, removed by Close unless Keep is set.
	Dir  string
	Keep bool
	// Acks is W of the quorum mode (origin included); 0 is a majority of
	// the sites.
	Acks int
	// PushSeed seeds by pushing every seed ref through the origin (batches of
	// SeedBatch) instead of writing the repositories and the refdb directly
	// (see the package doc).
	PushSeed bool
	// RefdbAtOrigin puts etcd beside the origin site (see the package doc).
	RefdbAtOrigin bool
	Log           *slog.Logger
	// ServeLog, if set, receives every serve's output (lines prefixed by
	// site), as the sites' own log files do.
	ServeLog io.Writer
}

func (c Config) acks(mode string) int {
	n := len(c.Topology.Sites)
	switch mode {
	case Async:
		return 1
	case Sync:
		return n
	}
	if c.Acks > 0 {
		return min(c.Acks, n)
	}
	return n/2 + 1
}

// Factories returns one Factory per mode of Modes.
func Factories(cfg Config) []workload.Factory {
	var out []workload.Factory
	for _, m := range Modes {
		out = append(out, Factory(cfg, m))
	}
	return out
}

// Factory returns the Factory of one mode.
func Factory(cfg Config, mode string) workload.Factory {
	return workload.Factory{Name: Name(mode), Start: func(ctx context.Context, seed workload.Seed) (workload.Target, error) {
		return Start(ctx, cfg, mode, seed)
	}}
}

// Target is a running sitesync cluster replicating one project.
type Target struct {
	cfg     Config
	mode    string
	project string
	c       *cluster.Cluster
	dir     string
	log     *slog.Logger
	http    *http.Client

	closeOnce sync.Once
	closeErr  error
}

var (
	_ workload.Target  = (*Target)(nil)
	_ workload.Quorum  = (*Target)(nil)
	_ workload.Metered = (*Target)(nil)
)

// Start starts a cluster in mode with cfg's topology and brings every site
// to seed (see the package doc).
func Start(ctx context.Context, cfg Config, mode string, seed workload.Seed) (_ *Target, err error) {
	switch mode {
	case Async, Quorum, Sync:
	default:
		return nil, fmt.Errorf("sitesync target: unknown mode %q", mode)
	}
	if cfg.Git == nil {
		cfg.Git = &workload.Git{}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("sitesync target: %w", err)
	}
	dir, err := os.MkdirTemp(cfg.Dir, "sitesync-"+mode+"-")
	if err != nil {
		return nil, fmt.Errorf("sitesync target: %w", err)
	}
	t := &Target{
		cfg: cfg, mode: mode, project: seed.Project, dir: dir,
		log:  log.With("component", "bench/sitesync", "target", Name(mode)),
		http: &http.Client{},
	}
	defer func() {
		if err != nil {
			t.logTails()
			t.Close()
		}
	}()
	p := cfg.Topology.Profile
	opts := cluster.Options{
		Sites: len(cfg.Topology.Sites), Mode: mode, Link: &p, Binary: cfg.Binary,
		Timeout: WriteTimeout, Dir: filepath.Join(dir, "cluster"), Log: cfg.ServeLog,
	}
	if mode == Quorum {
		opts.Acks = cfg.acks(mode)
	}
	if t.c, err = cluster.New(ctx, opts); err != nil {
		return nil, fmt.Errorf("sitesync target: %w", err)
	}
	// cluster names its sites a, b, c…; so does the harness's topology.
	for _, s := range cfg.Topology.Sites {
		if t.c.Site(s) == nil {
			return nil, fmt.Errorf("sitesync target: the cluster has no site %q", s)
		}
	}
	if cfg.RefdbAtOrigin {
		if err := t.c.SetProfile(t.origin().Name, cluster.EtcdName, link.Profile{}); err != nil {
			return nil, fmt.Errorf("sitesync target: %w", err)
		}
		if err := t.c.SetProfile(cluster.EtcdName, t.origin().Name, link.Profile{}); err != nil {
			return nil, fmt.Errorf("sitesync target: %w", err)
		}
	}
	t0 := time.Now()
	if err := t.seed(ctx, seed); err != nil {
		return nil, fmt.Errorf("sitesync target %s: seed: %w", Name(mode), err)
	}
	t.log.Info("seeded", "dir", dir, "took", time.Since(t0))
	return t, nil
}

func (t *Target) origin() *cluster.Site { return t.c.Site(t.cfg.Topology.Origin()) }

// Name is "sitesync/<mode>".
func (t *Target) Name() string { return Name(t.mode) }

// Sites are the peer sites.
func (t *Target) Sites() []string { return t.cfg.Topology.Peers() }

// AckSites is how many sites, the origin included, hold a write when it is
// acknowledged: 1 (async), W (quorum), every site (sync).
func (t *Target) AckSites() int { return t.cfg.acks(t.mode) }

// Cluster is the running cluster, for checks and relay statistics.
func (t *Target) Cluster() *cluster.Cluster { return t.c }

// Repo is the project's repository at site.
func (t *Target) Repo(site string) string {
	return filepath.Join(t.c.Site(site).Repos, t.project+".git")
}

func (t *Target) apiURL(s *cluster.Site, tail string) string {
	return s.URL + "/api/v1/projects/" + url.PathEscape(t.project) + tail
}

// Write performs u at the origin and returns when sitesync acknowledged it.
func (t *Target) Write(ctx context.Context, u workload.Update) (time.Time, error) {
	var err error
	switch u.Kind {
	case workload.ClientPush:
		_, err = t.cfg.Git.Run(ctx, u.Source, nil, "push", "--quiet", t.origin().GitURL(t.project), u.New+":"+u.Ref)
	case workload.LocalWrite:
		err = t.localWrite(ctx, u)
	default:
		err = fmt.Errorf("unknown update kind %v", u.Kind)
	}
	if err != nil {
		t.logTails()
		return time.Time{}, fmt.Errorf("%s write at the origin: %w", t.Name(), err)
	}
	return time.Now(), nil
}

// localWrite is POST /api/v1/projects/{name}/refs at the origin.
func (t *Target) localWrite(ctx context.Context, u workload.Update) error {
	body, err := json.Marshal(map[string]any{"updates": []refmove.Update{{Ref: u.Ref, Old: u.Old, New: u.New}}})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.apiURL(t.origin(), "/refs"), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST refs: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// ErrNotVisible is returned by Visible when the site answered with something
// other than the value (an error status).
var ErrNotVisible = errors.New("not visible")

// maxWait is the longest ?timeout= the API takes; Visible asks again after
// each 504 until ctx ends.
const maxWait = 5 * time.Minute

// Visible waits at site's own API until it holds ref at value.
func (t *Target) Visible(ctx context.Context, site, ref, value string) (time.Time, error) {
	s := t.c.Site(site)
	if s == nil {
		return time.Time{}, fmt.Errorf("no site %q", site)
	}
	for {
		wait := maxWait
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl)+time.Second)
		}
		if wait <= 0 {
			return time.Time{}, context.DeadlineExceeded
		}
		u := t.apiURL(s, "/refs/"+ref) + "?until=" + value + "&timeout=" + wait.Round(time.Millisecond).String()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return time.Time{}, err
		}
		resp, err := t.http.Do(req)
		if err != nil {
			return time.Time{}, err
		}
		at := time.Now()
		var body struct {
			Value string `json:"value"`
			Error string `json:"error"`
		}
		derr := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK && body.Value == value:
			return at, nil
		case resp.StatusCode == http.StatusGatewayTimeout:
			if err := ctx.Err(); err != nil {
				return time.Time{}, fmt.Errorf("%w: %s is still %s at %s: %w", ErrNotVisible, ref, body.Value, site, err)
			}
			continue
		case derr != nil:
			return time.Time{}, fmt.Errorf("%w: %s at %s: %s: %w", ErrNotVisible, ref, site, resp.Status, derr)
		default:
			t.logTails()
			return time.Time{}, fmt.Errorf("%w: %s at %s: %s: value %q, %s", ErrNotVisible, ref, site, resp.Status, body.Value, body.Error)
		}
	}
}

// logTails logs the end of every site's log, for a failure's report.
func (t *Target) logTails() {
	if t.c == nil {
		return
	}
	for _, s := range t.c.Sites() {
		t.log.Warn("site log tail", "site", s.Name, "log", s.LogPath, "tail", s.LogTail(40))
	}
}

// LogTails returns the last n lines of each site's log.
func (t *Target) LogTails(n int) string {
	var b strings.Builder
	for _, s := range t.c.Sites() {
		fmt.Fprintf(&b, "--- site %s: %s ---\n%s\n", s.Name, s.LogPath, s.LogTail(n))
	}
	return b.String()
}

// Close stops the cluster and removes its directory (unless Config.Keep).
// Idempotent.
func (t *Target) Close() error {
	t.closeOnce.Do(func() {
		if t.c != nil {
			t.closeErr = t.c.Close()
		}
		t.http.CloseIdleConnections()
		if !t.cfg.Keep {
			if err := os.RemoveAll(t.dir); err != nil && t.closeErr == nil {
				t.closeErr = err
			}
		}
	})
	return t.closeErr
}
