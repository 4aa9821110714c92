package baseline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sitesync/sitesync/bench/link"
	"github.com/sitesync/sitesync/bench/workload"
)

// Target names.
const (
	PushName  = "git-push"
	FetchName = "git-fetch"
)

// serverConfig is every site repository's configuration (see the package
// doc for why).
var serverConfig = []string{
	"http.receivepack", "true",
	"gc.auto", "0",
	"receive.autogc", "false",
	"transfer.unpackLimit", "1",
	"core.bigFileThreshold", "512k",
}

// Config is what both baseline Targets need.
type Config struct {
	Topology workload.Topology
	Git      *workload.Git
	// Dir is scratch space; each started Target makes a directory of its own
	// in it.
	Dir string
	Log *slog.Logger
}

// Factories returns the git-push and git-fetch Target factories.
func Factories(cfg Config) []workload.Factory {
	return []workload.Factory{
		{Name: PushName, Start: func(ctx context.Context, seed workload.Seed) (workload.Target, error) {
			return Start(ctx, cfg, PushName, seed)
		}},
		{Name: FetchName, Start: func(ctx context.Context, seed workload.Seed) (workload.Target, error) {
			return Start(ctx, cfg, FetchName, seed)
		}},
	}
}

// Target is a running baseline: one git server per site, relays between the
// origin and each peer, and the replication of every write.
type Target struct {
	cfg     Config
	name    string
	project string
	log     *slog.Logger

	repos   map[string]string // site → bare repository
	direct  map[string]string // site → its server's URL of the project, unimpaired
	toPeer  map[string]string // peer → URL of the peer's project through the relay from the origin
	toOrig  map[string]string // peer → URL of the origin's project through the relay from that peer
	servers []*http.Server
	relays  []*link.TCPRelay
	// toPeers are the relays whose clients are the origin (AtoB: origin →
	// peer), fromPeers those whose target is the origin (AtoB: peer →
	// origin).
	toPeers, fromPeers []*link.TCPRelay

	ctx    context.Context // replication; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	events map[eventKey]*event
	closed bool

	closeOnce sync.Once
	closeErr  error
}

var (
	_ workload.Target  = (*Target)(nil)
	_ workload.Metered = (*Target)(nil)
)

type eventKey struct{ site, ref, value string }

// event is the replication of one value of one ref to one site.
type event struct {
	done chan struct{}
	at   time.Time
	err  error
}

// Start builds the sites from seed under cfg.Dir and starts their servers
// and relays. name is PushName or FetchName.
func Start(ctx context.Context, cfg Config, name string, seed workload.Seed) (_ *Target, err error) {
	if name != PushName && name != FetchName {
		return nil, fmt.Errorf("baseline: unknown target %q", name)
	}
	if cfg.Git == nil {
		cfg.Git = &workload.Git{}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	dir, err := os.MkdirTemp(cfg.Dir, name+"-")
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	t := &Target{
		cfg: cfg, name: name, project: seed.Project, log: log.With("component", "bench/baseline", "target", name),
		repos: map[string]string{}, direct: map[string]string{}, toPeer: map[string]string{}, toOrig: map[string]string{},
		events: map[eventKey]*event{},
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	origin := cfg.Topology.Origin()
	for _, site := range cfg.Topology.Sites {
		src := seed.Peers
		if site == origin {
			src = seed.Origin
		}
		root := filepath.Join(dir, site)
		repo := filepath.Join(root, seed.Project+".git")
		if err := os.MkdirAll(filepath.Dir(repo), 0o755); err != nil {
			return nil, fmt.Errorf("baseline site %q: %w", site, err)
		}
		if err := workload.CopyRepo(src, repo); err != nil {
			return nil, fmt.Errorf("baseline site %q: %w", site, err)
		}
		if err := cfg.Git.Configure(ctx, repo, serverConfig...); err != nil {
			return nil, fmt.Errorf("baseline site %q: %w", site, err)
		}
		addr, err := t.serve(ctx, cfg, root)
		if err != nil {
			return nil, fmt.Errorf("baseline site %q: %w", site, err)
		}
		t.repos[site] = repo
		t.direct[site] = t.url(addr)
	}
	for _, peer := range cfg.Topology.Peers() {
		l, err := link.NewLink(cfg.Topology.Profile, cfg.Topology.Profile)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		to, err := t.relay(link.Config{Listen: "127.0.0.1:0", Target: hostPort(t.direct[peer]), Link: l})
		if err != nil {
			return nil, fmt.Errorf("baseline relay to %q: %w", peer, err)
		}
		t.toPeers = append(t.toPeers, to)
		from, err := t.relay(link.Config{Listen: "127.0.0.1:0", Target: hostPort(t.direct[origin]), Link: l, Reverse: true})
		if err != nil {
			return nil, fmt.Errorf("baseline relay from %q: %w", peer, err)
		}
		t.fromPeers = append(t.fromPeers, from)
		t.toPeer[peer], t.toOrig[peer] = t.url(to.Addr().String()), t.url(from.Addr().String())
	}
	t.log.Debug("started", "dir", dir, "origin", t.direct[origin])
	return t, nil
}

func (t *Target) url(addr string) string {
	return "http://" + addr + "/" + t.project + ".git"
}

func hostPort(url string) string {
	rest := strings.TrimPrefix(url, "http://")
	hp, _, _ := strings.Cut(rest, "/")
	return hp
}

// serve starts git http-backend for the repositories under root.
func (t *Target) serve(ctx context.Context, cfg Config, root string) (string, error) {
	out, err := cfg.Git.Run(ctx, "", nil, "--exec-path")
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	env := append(append([]string(nil), cfg.Git.Env...), "GIT_PROJECT_ROOT="+root, "GIT_HTTP_EXPORT_ALL=1")
	srv := &http.Server{
		Handler:           streamChunked(&cgi.Handler{Path: filepath.Join(strings.TrimSpace(out), "git-http-backend"), Env: env}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	t.servers = append(t.servers, srv)
	t.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.log.Warn("git server stopped", "error", err)
		}
	})
	return ln.Addr().String(), nil
}

// streamChunked lets a chunked request body through to a CGI program, which
// net/http/cgi refuses: the body is streamed to the program's standard input
// without CONTENT_LENGTH, and git http-backend then reads it to its end (as
// it does behind a web server that streams). git sends a pack larger than
// http.postBuffer (1 MiB) chunked.
func streamChunked(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked" {
			r = r.Clone(r.Context())
			r.TransferEncoding = nil
			r.ContentLength = -1 // unknown: no CONTENT_LENGTH, body on stdin
		}
		h.ServeHTTP(w, r)
	})
}

func (t *Target) relay(c link.Config) (*link.TCPRelay, error) {
	r, err := link.ListenTCP(c)
	if err != nil {
		return nil, err
	}
	t.relays = append(t.relays, r)
	t.wg.Go(func() { _ = r.Run(t.ctx) })
	return r, nil
}

// Name is PushName or FetchName.
func (t *Target) Name() string { return t.name }

// Sites are the peer sites.
func (t *Target) Sites() []string { return t.cfg.Topology.Peers() }

// Repo is the repository of site, for checks.
func (t *Target) Repo(site string) string { return t.repos[site] }

// Traffic is the TCP payload the relays between the origin and its peers
// delivered so far: every byte of the replication (HTTP requests and
// responses, the git protocol with its ref advertisement and negotiation,
// the packs), nothing else crosses them.
func (t *Target) Traffic(context.Context) (workload.Traffic, error) {
	var tr workload.Traffic
	for _, r := range t.toPeers {
		st := r.Stats()
		tr.Out += int64(st.AtoB.Bytes)
		tr.In += int64(st.BtoA.Bytes)
	}
	for _, r := range t.fromPeers {
		st := r.Stats()
		tr.Out += int64(st.BtoA.Bytes)
		tr.In += int64(st.AtoB.Bytes)
	}
	return tr, nil
}

// WireNote says what Traffic counts.
func (t *Target) WireNote() string {
	n := "wire, " + t.name + ": TCP payload through the relays between the origin and its peers " +
		"(HTTP and the git protocol: the ref advertisement, the negotiation and the pack)"
	if t.name == FetchName {
		n += "; the notification of the peer is modelled as a delay and carries no bytes"
	}
	return n
}

// Write performs u at the origin, starts its replication to every peer and
// returns when the origin holds it.
func (t *Target) Write(ctx context.Context, u workload.Update) (time.Time, error) {
	origin := t.cfg.Topology.Origin()
	var err error
	switch u.Kind {
	case workload.ClientPush:
		_, err = t.cfg.Git.Run(ctx, u.Source, nil, "push", "--quiet", t.direct[origin], u.New+":"+u.Ref)
	case workload.LocalWrite:
		_, err = t.cfg.Git.Run(ctx, t.repos[origin], nil, "update-ref", u.Ref, u.New, u.Old)
	default:
		err = fmt.Errorf("unknown update kind %v", u.Kind)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%s write at the origin: %w", t.name, err)
	}
	acked := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return acked, errors.New("target closed")
	}
	for _, peer := range t.Sites() {
		ev := t.eventLocked(eventKey{peer, u.Ref, u.New})
		t.wg.Go(func() {
			ev.err = t.replicate(t.ctx, peer, u)
			ev.at = time.Now()
			close(ev.done)
		})
	}
	return acked, nil
}

// replicate brings u to peer as the plugin the Target stands for does.
func (t *Target) replicate(ctx context.Context, peer string, u workload.Update) error {
	var err error
	if t.name == PushName {
		_, err = t.cfg.Git.Run(ctx, t.repos[t.cfg.Topology.Origin()], nil, "push", "--quiet", t.toPeer[peer], "+"+u.New+":"+u.Ref)
	} else {
		// The notification reaches the peer one one-way delay later.
		timer := time.NewTimer(t.cfg.Topology.OneWay(peer))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
		_, err = t.cfg.Git.Run(ctx, t.repos[peer], nil, "fetch", "--quiet", "--no-tags", t.toOrig[peer], "+"+u.Ref+":"+u.Ref)
	}
	if err != nil {
		t.log.Debug("replication failed", "peer", peer, "ref", u.Ref, "error", err)
	}
	return err
}

func (t *Target) eventLocked(k eventKey) *event {
	ev, ok := t.events[k]
	if !ok {
		ev = &event{done: make(chan struct{})}
		t.events[k] = ev
	}
	return ev
}

// ErrNotReplicated is returned by Visible when the replication to the site
// ended without the site holding the value.
var ErrNotReplicated = errors.New("not replicated")

// Visible waits for the replication of ref=value to site and returns when
// it finished, after checking that the site's repository holds the value.
func (t *Target) Visible(ctx context.Context, site, ref, value string) (time.Time, error) {
	t.mu.Lock()
	ev := t.eventLocked(eventKey{site, ref, value})
	t.mu.Unlock()
	select {
	case <-ev.done:
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
	if ev.err != nil {
		return time.Time{}, fmt.Errorf("%w: %w", ErrNotReplicated, ev.err)
	}
	got, err := t.cfg.Git.RevParse(ctx, t.repos[site], ref)
	if err != nil || got != value {
		return time.Time{}, fmt.Errorf("%w: %s at %q is %q, want %s", ErrNotReplicated, ref, site, got, value)
	}
	return ev.at, nil
}

// Close stops the replication, the relays and the servers and waits for
// them. It is idempotent.
func (t *Target) Close() error {
	t.closeOnce.Do(func() { t.closeErr = t.close() })
	return t.closeErr
}

func (t *Target) close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.cancel()
	for _, r := range t.relays {
		_ = r.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, s := range t.servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	t.wg.Wait()
	return errors.Join(errs...)
}
