// Package site wires one sitesync site from its configuration: repository
// store, refdb, QUIC mesh, hook socket, replication coordinator and HTTP
// front door. `sitesync serve` runs one; `sitesync demo` runs several in one
// process. New opens and binds everything (so a bad port or certificate
// fails at once); Run serves until its context ends and returns after every
// goroutine it started has exited.
package site

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/coord"
	"github.com/sitesync/sitesync/internal/frontdoor"
	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/hook"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/backend"
	"github.com/sitesync/sitesync/transport"
)

// shutdownGrace is how long in-flight requests (a clone in progress) get to
// finish after the site is asked to stop before their connections close.
const shutdownGrace = 30 * time.Second

// readyTimeout bounds the refdb check of /readyz: a load balancer polls it
// every few seconds and must get an answer before its own timeout.
const readyTimeout = 2 * time.Second

// readHeaderTimeout bounds a client that opens a connection and sends no
// request: long enough for any WAN, short enough to shed idle sockets.
const readHeaderTimeout = 30 * time.Second

// Options are what a site needs besides its configuration.
type Options struct {
	Log *slog.Logger
	// Binary is the sitesync executable git runs as the hook; default the
	// running executable.
	Binary string
	// Fault is a test-only crash point (see coord.Fault*); default the
	// SITESYNC_FAULT environment variable.
	Fault string
	// Registry receives the site's metrics; default a fresh registry with
	// the Go and process collectors.
	Registry *prometheus.Registry
}

// Site is one running site.
type Site struct {
	live  *config.Live
	cfg   *config.Config
	log   *slog.Logger
	repos *git.Repos
	store refdb.Store
	mesh  *transport.Mesh // nil when the site has no peers
	coord *coord.Coordinator
	hooks *hook.Server
	http  *http.Server
	ln    net.Listener
}

// New opens everything the configuration names and binds the HTTP port.
func New(ctx context.Context, live *config.Live, opts Options) (_ *Site, err error) {
	cfg := live.Current()
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	for _, dir := range []string{cfg.Site.Repos, cfg.Site.State} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("site directories: %w", err)
		}
	}
	s := &Site{live: live, cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	root, err := git.NewRoot(cfg.Site.Repos)
	if err != nil {
		return nil, err
	}
	// A site that died (power loss, SIGKILL) may have killed git processes
	// holding ref locks; no git process of this site runs yet, so any lock
	// older than now is stale and would leave its ref unwritable.
	if removed, err := root.RemoveStaleLocks(time.Now()); err != nil {
		return nil, err
	} else if len(removed) > 0 {
		log.Warn("removed ref locks left by a crash", "locks", removed)
	}
	// The daemon's own ref writes apply decided transactions: an installed
	// reference-transaction hook lets them through, so they may skip it.
	s.repos = git.NewReposOpts(root, git.RefUpdaterOptions{Env: []string{hook.EnvApplying + "=1"}, SkipHooks: true})

	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s.store, err = backend.Open(ctx, refdb.Config{
		Backend:   string(cfg.RefDB.Backend),
		Endpoints: cfg.RefDB.Endpoints,
		Prefix:    cfg.RefDB.Prefix,
		Ignore:    cfg.RefDB.Ignore,
		MaxTxnOps: cfg.RefDB.MaxTxnOps,
	}.Defaults(), log, reg)
	if err != nil {
		return nil, fmt.Errorf("refdb: %w", err)
	}

	var mesh coord.Mesh = lonely{}
	if len(cfg.Mesh.Peers) > 0 {
		peers := make([]transport.Peer, len(cfg.Mesh.Peers))
		for i, p := range cfg.Mesh.Peers {
			peers[i] = transport.Peer{Name: p.Name, Addr: p.Addr}
		}
		s.mesh, err = transport.New(transport.Config{
			Site: cfg.Site.Name, Listen: cfg.Mesh.Listen,
			CAFile: cfg.Mesh.CA, CertFile: cfg.Mesh.Cert, KeyFile: cfg.Mesh.Key,
			Peers: peers, StateDir: cfg.Site.State,
			MaxFrame: int64(cfg.Mesh.MaxFrame), StreamWindow: uint64(cfg.Mesh.StreamWindow), ConnWindow: uint64(cfg.Mesh.ConnWindow),
		}, log, reg)
		if err != nil {
			return nil, fmt.Errorf("mesh: %w", err)
		}
		mesh = s.mesh
	}

	socket := HookSocket(cfg.Site.State)
	binary := opts.Binary
	if binary == "" {
		if binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the sitesync executable for hooks: %w", err)
		}
	}
	hooksDir := filepath.Join(cfg.Site.State, "hooks")
	if err := hook.WriteScripts(hooksDir, binary, socket); err != nil {
		return nil, err
	}
	atomicHooks, perRefHooks, err := hook.WritePushScripts(filepath.Join(cfg.Site.State, "push-hooks"), binary, socket)
	if err != nil {
		return nil, err
	}
	fault := opts.Fault
	if fault == "" {
		fault = os.Getenv("SITESYNC_FAULT")
	}
	s.coord, err = coord.New(coord.Config{
		Site:        cfg.Site.Name,
		Repos:       s.repos,
		Store:       s.store,
		Mesh:        mesh,
		Policy:      s.policy,
		Guarded:     func(ref string) bool { return s.live.Current().Guarded(ref) },
		State:       cfg.Site.State,
		Env:         pushEnv(socket, atomicHooks),
		PerRefEnv:   pushEnv(socket, perRefHooks),
		Log:         log,
		Reg:         reg,
		Fault:       fault,
		MaxPack:     int64(cfg.Mesh.MaxPack),
		DefaultHead: cfg.Projects.DefaultHead,
		NoteDB: &coord.NoteDBConfig{
			Match:    func(ref string) bool { return s.live.Current().NoteDBRef(ref) },
			MaxBytes: func() int64 { return int64(s.live.Current().NoteDB.MaxBytes) },
		},
	})
	if err != nil {
		return nil, err
	}
	s.hooks = hook.NewServer(socket, s.coord.Hook, log)

	extra := http.NewServeMux()
	extra.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	front := frontdoor.New(frontdoor.Config{
		Site: cfg.Site.Name, Repos: s.repos, Ready: s.ready, Extra: extra, Log: log,
		Coord: s.coord, Status: s.status, Route: Route(live, s.rtt, s.coord.Serving),
		DefaultHead: cfg.Projects.DefaultHead,
	})
	s.ln, err = net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	s.http = &http.Server{Handler: front, ReadHeaderTimeout: readHeaderTimeout}
	return s, nil
}

// HookSocket is where the daemon of a site with state directory state
// listens for its hooks.
func HookSocket(state string) string { return filepath.Join(state, "hook.sock") }

// pushEnv is the environment of git receive-pack: sitesync's hooks, and
// fsync of everything a push writes, so an acknowledged push is durable at
// its origin (invariant 1).
func pushEnv(socket, hooksDir string) []string {
	kv := [][2]string{{"core.hooksPath", hooksDir}, {"core.fsync", "committed"}, {"core.fsyncMethod", "fsync"}}
	env := []string{hook.EnvSocket + "=" + socket, fmt.Sprintf("GIT_CONFIG_COUNT=%d", len(kv))}
	for i, p := range kv {
		env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, p[0]), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, p[1]))
	}
	return env
}

// policy resolves a project's rule from the live configuration.
func (s *Site) policy(project string) coord.Policy {
	c := s.live.Current()
	r := c.Rule(project)
	return coord.Policy{Mode: string(r.Mode), Acks: r.Acks, Timeout: r.Timeout, Sites: c.Placement(project)}
}

// ready is /readyz: the refdb answers and the site has caught up once.
func (s *Site) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := refdb.Ping(ctx, s.store); err != nil {
		return fmt.Errorf("refdb unreachable: %w", err)
	}
	return s.coord.Ready()
}

// URL is the site's front door as clients reach it.
func (s *Site) URL() string { return s.cfg.HTTP.URL }

// Coord is the site's replication coordinator (benchmarks and tests drive
// its write API without HTTP).
func (s *Site) Coord() *coord.Coordinator { return s.coord }

// RefDB is the site's refdb store (tests: an embedded store is shared by
// the sites of a Local cluster).
func (s *Site) RefDB() refdb.Store { return s.store }

// Name is the site's name.
func (s *Site) Name() string { return s.cfg.Site.Name }

// Root is the site's repository store.
func (s *Site) Root() git.Root { return s.repos.Root() }

// State is the site's state directory (journals, hook socket and scripts).
func (s *Site) State() string { return s.cfg.Site.State }

// Addr is the address the front door listens on.
func (s *Site) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then shuts down gracefully.
func (s *Site) Run(ctx context.Context) error {
	defer s.close()
	s.log.Info("site serving", "site", s.cfg.Site.Name, "http", s.ln.Addr().String(), "repos", s.repos.Root().Dir(), "refdb", string(s.cfg.RefDB.Backend), "peers", len(s.cfg.Mesh.Peers))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.live.Run(ctx) })
	if s.mesh != nil {
		g.Go(func() error { return s.mesh.Run(ctx) })
	}
	g.Go(func() error { return s.hooks.Run(ctx) })
	g.Go(func() error { return s.coord.Run(ctx) })
	g.Go(func() error {
		// A new placement may add projects to this site: catch up now.
		changes, cancel := s.live.Subscribe()
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-changes:
				s.coord.KickCatchUp()
			}
		}
	})
	g.Go(func() error {
		if err := s.http.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		s.log.Info("shutting down", "grace", shutdownGrace)
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		return s.http.Shutdown(sctx)
	})
	return g.Wait()
}

func (s *Site) close() {
	if s.ln != nil && s.http == nil {
		s.ln.Close()
	}
	if s.repos != nil {
		s.repos.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}
