package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sitesync/sitesync/bench/link"
	"github.com/sitesync/sitesync/internal/freeport"
	"github.com/sitesync/sitesync/internal/testkit/etcdtest"
	"github.com/sitesync/sitesync/transport"
)

// EtcdName names the refdb end of a site's refdb link in Link and SetProfile:
// c.Link("a", cluster.EtcdName) is the link between site a and etcd.
const EtcdName = "etcd"

// maxSites is the number of one-letter site names.
const maxSites = 26

// closeGrace is how long Close lets each serve shut down after SIGTERM
// before SIGKILL: an idle test cluster stops in well under a second, and a
// test's cleanup should not wait serve's full 30 s grace for a hung request.
const closeGrace = 10 * time.Second

// Options describes a cluster. The zero Options is 3 sites (a, b, c) in
// quorum mode with one real etcd and direct loopback paths.
type Options struct {
	Sites   int           // default 3, named a, b, c, ... (at most 26)
	Mode    string        // replication.mode: async|quorum|sync (default quorum)
	Acks    int           // replication.acks (0: unset, serve's default)
	Timeout time.Duration // replication.timeout (0: unset, serve's default)
	// Refdb is "etcd" (default: one real etcd process for the cluster) or
	// "none" (refdb.backend none, which the config schema accepts only for a
	// single site unless Config sets another backend).
	Refdb string
	// EtcdArgs are more flags for the etcd server (e.g. "--max-txn-ops",
	// "10000"); its defaults otherwise.
	EtcdArgs []string
	// Link, if set, puts every site-to-site path and each site's refdb path
	// through bench/link relays with this profile in each direction (see
	// the package doc). nil: direct loopback, no relays.
	Link *link.Profile
	// Config, if set, edits each site's YAML tree before it is first
	// written (the tree's shape is in the package doc).
	Config func(site string, cfg map[string]any)
	// Binary is the sitesync binary; "" builds ./cmd/sitesync of the
	// enclosing module once per process (tests). The bench command, being
	// that binary, passes os.Executable().
	Binary string
	// Dir holds certs, etcd data and one directory per site; "" is
	// tb.TempDir() in Start, a temporary directory removed by Close in New.
	Dir string
	// Log, if set, receives every process's output too, each line
	// prefixed "<site> | " (the files get it in any case).
	Log io.Writer
	// Env, if set, gives each site's serve extra environment variables
	// (KEY=VALUE, after the test process's own), for example a crash point
	// such as SITESYNC_FAULT=after-refdb-commit. Site.SetEnv changes them
	// for later starts.
	Env func(site string) []string
}

// Cluster is a set of sitesync serve processes, their etcd and, with
// Options.Link, the relays between them. Safe for concurrent use.
type Cluster struct {
	dir     string
	tempDir string // removed by Close: New made it
	bin     string
	log     *logSink
	sites   []*Site
	byName  map[string]*Site
	etcd    *etcdtest.Server

	links    map[[2]string]*link.Link  // key: pairKey
	peerAddr map[[2]string]string      // {from, to}: to's mesh address in from's config
	peerURL  map[[2]string]string      // {from, to}: to's URL in from's config
	endpoint map[string]string         // site: its refdb endpoint
	stats    map[[2]string]*pathRelays // {from, to}: the relays from uses to reach to

	relays []interface{ Close() error }
	cancel context.CancelFunc
	wg     sync.WaitGroup // relay Run goroutines

	partMu      sync.Mutex
	partitioned map[string]bool

	closed    atomic.Bool // set first thing in Close: Site.Start refuses
	closeOnce sync.Once
	closeErr  error
}

// Start starts a cluster for a test: it fails tb on error, stops everything
// in tb.Cleanup and, if the test failed, logs the last lines of each site's
// log first.
func Start(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	c, err := New(context.Background(), opts)
	if err != nil {
		tb.Fatalf("start cluster: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			for _, s := range c.sites {
				tb.Logf("--- site %s: %s (last %d lines) ---\n%s", s.Name, s.LogPath, tailLines, s.LogTail(tailLines))
			}
		}
		if err := c.Close(); err != nil {
			tb.Errorf("close cluster: %v", err)
		}
	})
	return c
}

// New starts a cluster: certificates, etcd, relays, one config and one
// running serve per site (each answering /healthz). ctx bounds the start
// only; everything runs until Close. On error nothing is left running.
func New(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Sites == 0 {
		opts.Sites = 3
	}
	if opts.Sites < 0 || opts.Sites > maxSites {
		return nil, fmt.Errorf("cluster: %d sites: want 1-%d", opts.Sites, maxSites)
	}
	if opts.Mode == "" {
		opts.Mode = "quorum"
	}
	if opts.Refdb == "" {
		opts.Refdb = "etcd"
	}
	if opts.Refdb != "etcd" && opts.Refdb != "none" {
		return nil, fmt.Errorf("cluster: refdb %q: want etcd or none", opts.Refdb)
	}
	if opts.Link != nil {
		if err := opts.Link.Validate(); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}

	rctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		byName:      map[string]*Site{},
		links:       map[[2]string]*link.Link{},
		peerAddr:    map[[2]string]string{},
		peerURL:     map[[2]string]string{},
		endpoint:    map[string]string{},
		stats:       map[[2]string]*pathRelays{},
		partitioned: map[string]bool{},
		cancel:      cancel,
	}
	started := false
	defer func() {
		if !started {
			_ = c.Close()
		}
	}()
	if opts.Log != nil {
		c.log = &logSink{w: opts.Log}
	}

	var err error
	c.dir = opts.Dir
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "sitesync-cluster-"); err != nil {
			return nil, fmt.Errorf("cluster dir: %w", err)
		}
		c.tempDir = c.dir
	}
	if c.dir, err = filepath.Abs(c.dir); err != nil {
		return nil, fmt.Errorf("cluster dir: %w", err)
	}
	c.bin = opts.Binary
	if c.bin == "" {
		if c.bin, err = builtBinary(); err != nil {
			return nil, err
		}
	}

	names := make([]string, opts.Sites)
	for i := range names {
		names[i] = string(rune('a' + i))
	}
	certs := filepath.Join(c.dir, "certs")
	if err := transport.GenerateCerts(certs, names); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}

	if opts.Refdb == "etcd" {
		if c.etcd, err = etcdtest.StartProcess(ctx, filepath.Join(c.dir, "etcd"), opts.EtcdArgs...); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}

	ports := &portPicker{used: map[string]bool{}}
	for _, n := range names {
		httpAddr, err := ports.pick("tcp")
		if err != nil {
			return nil, err
		}
		meshAddr, err := ports.pick("udp")
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(c.dir, n)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		s := &Site{
			Name:       n,
			URL:        "http://" + httpAddr,
			HTTPAddr:   httpAddr,
			MeshAddr:   meshAddr,
			Dir:        dir,
			Repos:      filepath.Join(dir, "repos"),
			State:      filepath.Join(dir, "state"),
			ConfigPath: filepath.Join(dir, "site.yaml"),
			LogPath:    filepath.Join(dir, "serve.log"),
			c:          c,
		}
		if opts.Env != nil {
			s.env = append([]string(nil), opts.Env(n)...)
		}
		c.sites = append(c.sites, s)
		c.byName[n] = s
	}

	if err := c.wire(rctx, opts.Link); err != nil {
		return nil, err
	}

	for _, s := range c.sites {
		s.cfg = c.config(s, opts, certs)
		if opts.Config != nil {
			opts.Config(s.Name, s.cfg)
		}
		if err := writeConfig(s.ConfigPath, s.cfg); err != nil {
			return nil, fmt.Errorf("cluster: config of site %q: %w", s.Name, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}

	var g errgroup.Group
	for _, s := range c.sites {
		g.Go(s.Start)
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	started = true
	return c, nil
}

// wire fills the address maps: direct addresses without a profile, else one
// Link per site pair (UDP relays for the mesh, TCP relays for the HTTP URLs,
// one each way) and one Link per site to etcd (a TCP relay), all served
// until Close.
func (c *Cluster) wire(ctx context.Context, p *link.Profile) error {
	for _, x := range c.sites {
		if c.etcd != nil {
			c.endpoint[x.Name] = c.etcd.Addr
		}
		for _, y := range c.sites {
			if x != y {
				c.peerAddr[[2]string{x.Name, y.Name}] = y.MeshAddr
				c.peerURL[[2]string{x.Name, y.Name}] = y.URL
			}
		}
	}
	if p == nil {
		return nil
	}
	for i, x := range c.sites {
		for _, y := range c.sites[i+1:] {
			// x is side a of the pair's link: x→y follows AtoB.
			l, err := link.NewLink(*p, *p)
			if err != nil {
				return fmt.Errorf("cluster: %w", err)
			}
			c.links[pairKey(x.Name, y.Name)] = l
			for _, d := range []struct {
				from, to *Site
				reverse  bool
			}{{x, y, false}, {y, x, true}} {
				u, err := link.ListenUDP(link.Config{Listen: "127.0.0.1:0", Target: d.to.MeshAddr, Link: l, Reverse: d.reverse})
				if err != nil {
					return fmt.Errorf("cluster: mesh relay %s->%s: %w", d.from.Name, d.to.Name, err)
				}
				c.serve(ctx, u)
				c.peerAddr[[2]string{d.from.Name, d.to.Name}] = u.Addr().String()
				path := &pathRelays{mesh: u}
				c.stats[[2]string{d.from.Name, d.to.Name}] = path

				t, err := link.ListenTCP(link.Config{Listen: "127.0.0.1:0", Target: d.to.HTTPAddr, Link: l, Reverse: d.reverse})
				if err != nil {
					return fmt.Errorf("cluster: http relay %s->%s: %w", d.from.Name, d.to.Name, err)
				}
				c.serve(ctx, t)
				c.peerURL[[2]string{d.from.Name, d.to.Name}] = "http://" + t.Addr().String()
				path.http = t
			}
		}
	}
	for _, x := range c.sites {
		l, err := link.NewLink(*p, *p)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		c.links[pairKey(x.Name, EtcdName)] = l
		if c.etcd == nil {
			continue
		}
		t, err := link.ListenTCP(link.Config{Listen: "127.0.0.1:0", Target: c.etcd.Addr, Link: l})
		if err != nil {
			return fmt.Errorf("cluster: refdb relay of %s: %w", x.Name, err)
		}
		c.serve(ctx, t)
		c.endpoint[x.Name] = t.Addr().String()
		c.stats[[2]string{x.Name, EtcdName}] = &pathRelays{refdb: t}
	}
	return nil
}

// pathRelays are the relays of one ordered path.
type pathRelays struct {
	mesh  *link.UDPRelay
	http  *link.TCPRelay
	refdb *link.TCPRelay
}

// RelayStats counts what the relays of one path delivered and dropped. In
// each, AtoB is what the path's client (the from site) sent and BtoA the
// replies it got.
type RelayStats struct {
	Mesh  link.Stats // the UDP relay from's mesh.peers[].addr names
	HTTP  link.Stats // the TCP relay from's mesh.peers[].url names
	Refdb link.Stats // the TCP relay of from's refdb.endpoints (to = EtcdName)
}

// RelayStats returns the counters of the relays from uses to reach to (a
// site or EtcdName); zero without Options.Link.
func (c *Cluster) RelayStats(from, to string) RelayStats {
	var st RelayStats
	p := c.stats[[2]string{from, to}]
	if p == nil {
		return st
	}
	if p.mesh != nil {
		st.Mesh = p.mesh.Stats()
	}
	if p.http != nil {
		st.HTTP = p.http.Stats()
	}
	if p.refdb != nil {
		st.Refdb = p.refdb.Stats()
	}
	return st
}

type relay interface {
	Run(ctx context.Context) error
	Close() error
}

func (c *Cluster) serve(ctx context.Context, r relay) {
	c.relays = append(c.relays, r)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		_ = r.Run(ctx) // ends with ctx or Close; a relay has no other failure
	}()
}

// config is a site's initial config tree.
func (c *Cluster) config(s *Site, opts Options, certs string) map[string]any {
	peers := []any{}
	for _, y := range c.sites {
		if y != s {
			k := [2]string{s.Name, y.Name}
			peers = append(peers, map[string]any{"name": y.Name, "addr": c.peerAddr[k], "url": c.peerURL[k]})
		}
	}
	refdb := map[string]any{"backend": "none"}
	if c.etcd != nil {
		refdb = map[string]any{"backend": "etcd", "endpoints": []any{c.endpoint[s.Name]}, "prefix": "/sitesync"}
	}
	repl := map[string]any{"mode": opts.Mode}
	if opts.Acks != 0 {
		repl["acks"] = opts.Acks
	}
	if opts.Timeout != 0 {
		repl["timeout"] = opts.Timeout.String()
	}
	return map[string]any{
		"site": map[string]any{"name": s.Name, "repos": s.Repos, "state": s.State},
		"http": map[string]any{"listen": s.HTTPAddr, "url": s.URL},
		"mesh": map[string]any{
			"listen": s.MeshAddr,
			"ca":     filepath.Join(certs, "ca.pem"),
			"cert":   filepath.Join(certs, s.Name+".pem"),
			"key":    filepath.Join(certs, s.Name+"-key.pem"),
			"peers":  peers,
		},
		"refdb":       refdb,
		"replication": repl,
	}
}

// Close stops every site (SIGTERM, SIGKILL after 10 s), the relays and etcd,
// and removes the directory New made. It reports a site that did not stop
// cleanly. Idempotent.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		for _, s := range c.sites {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.stop(closeGrace); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		c.cancel()
		for _, r := range c.relays {
			_ = r.Close()
		}
		c.wg.Wait()
		if c.etcd != nil {
			errs = append(errs, c.etcd.Close())
		}
		if c.tempDir != "" {
			errs = append(errs, os.RemoveAll(c.tempDir))
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// Sites returns the sites in name order.
func (c *Cluster) Sites() []*Site { return append([]*Site(nil), c.sites...) }

// Site returns the named site, or nil.
func (c *Cluster) Site(name string) *Site { return c.byName[name] }

// Dir is the cluster's directory.
func (c *Cluster) Dir() string { return c.dir }

// Binary is the sitesync binary the sites run.
func (c *Cluster) Binary() string { return c.bin }

// Etcd is the cluster's etcd, nil with Refdb none.
func (c *Cluster) Etcd() *etcdtest.Server { return c.etcd }

// Link returns the emulated link between two sites (the same Link for both
// orders; its side a is the site whose name sorts first), or between a site
// and etcd (to = EtcdName; side a is the site). nil without Options.Link.
// Use it to change a profile or partition one pair at run time; SetProfile
// picks the direction for you.
func (c *Cluster) Link(from, to string) *link.Link { return c.links[pairKey(from, to)] }

// SetProfile sets the profile of the direction from→to of their link
// (to or from may be EtcdName).
func (c *Cluster) SetProfile(from, to string, p link.Profile) error {
	l := c.Link(from, to)
	if l == nil {
		return fmt.Errorf("cluster: no link %s->%s (Options.Link unset or unknown site)", from, to)
	}
	d := link.AtoB
	if k := pairKey(from, to); k[0] != from {
		d = link.BtoA
	}
	return l.SetProfile(d, p)
}

// PeerAddr is the mesh address from's config names for to: a relay with
// Options.Link, else to's MeshAddr.
func (c *Cluster) PeerAddr(from, to string) string { return c.peerAddr[[2]string{from, to}] }

// PeerURL is the URL from's config names for to (mesh.peers[].url): a relay
// with Options.Link, else to's URL.
func (c *Cluster) PeerURL(from, to string) string { return c.peerURL[[2]string{from, to}] }

// RefdbEndpoint is the etcd endpoint site's config names ("" with Refdb
// none): its own relay with Options.Link, else etcd's address.
func (c *Cluster) RefdbEndpoint(site string) string { return c.endpoint[site] }

// Partition cuts (on) or heals (off) every link of site, both directions:
// to every other site and to etcd. A pair stays cut while either of its
// sites is partitioned. It panics without Options.Link (there are no
// relays to cut; use Link: &link.Profile{} for partitions without delay)
// or for an unknown site.
func (c *Cluster) Partition(site string, on bool) {
	if c.byName[site] == nil {
		panic(fmt.Sprintf("cluster: Partition of unknown site %q", site))
	}
	if len(c.links) == 0 {
		panic("cluster: Partition needs Options.Link")
	}
	c.partMu.Lock()
	defer c.partMu.Unlock()
	c.partitioned[site] = on
	for _, y := range c.sites {
		if y.Name != site {
			c.Link(site, y.Name).SetPartition(on || c.partitioned[y.Name])
		}
	}
	c.Link(site, EtcdName).SetPartition(on)
}

// pairKey orders a pair: two sites by name, a site and etcd with the site
// first.
func pairKey(x, y string) [2]string {
	if y == EtcdName || (x != EtcdName && x < y) {
		return [2]string{x, y}
	}
	return [2]string{y, x}
}

// portPicker hands out loopback ports that were free a moment ago, never the
// same one twice.
type portPicker struct{ used map[string]bool }

func (p *portPicker) pick(network string) (string, error) {
	for range 100 {
		addr, err := freeport.Pick(network)
		if err != nil {
			return "", err
		}
		if !p.used[addr] {
			p.used[addr] = true
			return addr, nil
		}
	}
	return "", fmt.Errorf("no free %s port", network)
}
