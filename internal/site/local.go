package site

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/freeport"
	"github.com/sitesync/sitesync/transport"
)

// LocalOptions describe a cluster of sites in one process.
type LocalOptions struct {
	Sites   int           // default 3, named a, b, c, …
	Dir     string        // required: configs, certificates, repositories, state
	Mode    string        // replication.mode; default quorum
	Acks    int           // replication.acks; 0: the default
	Timeout time.Duration // replication.timeout; 0: the default
	Binary  string        // the sitesync executable for hooks; default the running one
	Log     *slog.Logger
}

// Local is a cluster of sites running in one process, sharing an embedded
// refdb: what `sitesync demo` runs, and what fast tests use.
type Local struct {
	Sites []*Site
	Dir   string
}

// SiteNames names n sites a, b, c, …
func SiteNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = string(rune('a' + i))
	}
	return names
}

// NewLocal writes certificates and one configuration file per site under
// opts.Dir (reusing them if they exist, so a restarted demo keeps its data)
// and opens every site.
func NewLocal(ctx context.Context, opts LocalOptions) (*Local, error) {
	if opts.Sites <= 0 {
		opts.Sites = 3
	}
	if opts.Sites > 26 {
		return nil, fmt.Errorf("at most 26 sites, not %d", opts.Sites)
	}
	if opts.Mode == "" {
		opts.Mode = "quorum"
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	names := SiteNames(opts.Sites)
	certs := filepath.Join(opts.Dir, "certs")
	if _, err := os.Stat(filepath.Join(certs, "ca.pem")); err != nil {
		if err := transport.GenerateCerts(certs, names); err != nil {
			return nil, err
		}
	}
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(opts.Dir, n+".yaml")
	}
	if _, err := os.Stat(paths[0]); err != nil {
		if err := writeLocalConfigs(opts, names, paths); err != nil {
			return nil, err
		}
	}
	l := &Local{Dir: opts.Dir}
	for i, n := range names {
		live, err := config.NewLive(paths[i], opts.Log)
		if err != nil {
			l.close()
			return nil, err
		}
		s, err := New(ctx, live, Options{Log: opts.Log.With("site", n), Binary: opts.Binary})
		if err != nil {
			l.close()
			return nil, fmt.Errorf("site %s: %w", n, err)
		}
		l.Sites = append(l.Sites, s)
	}
	return l, nil
}

// Run runs every site until ctx ends.
func (l *Local) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, s := range l.Sites {
		g.Go(func() error { return s.Run(ctx) })
	}
	return g.Wait()
}

func (l *Local) close() {
	for _, s := range l.Sites {
		s.close()
	}
}

func writeLocalConfigs(opts LocalOptions, names, paths []string) error {
	type ports struct{ http, mesh string }
	ps := make([]ports, len(names))
	for i := range names {
		h, err := freeport.Pick("tcp")
		if err != nil {
			return err
		}
		m, err := freeport.Pick("udp")
		if err != nil {
			return err
		}
		ps[i] = ports{h, m}
	}
	// One embedded refdb per cluster directory: sites of this process that
	// name the same endpoint share it.
	refdbName := "local-" + filepath.Base(opts.Dir)
	for i, n := range names {
		var b strings.Builder
		fmt.Fprintf(&b, "site:\n  name: %s\n  repos: %s\n  state: %s\n", n, filepath.Join(n, "repos"), filepath.Join(n, "state"))
		fmt.Fprintf(&b, "http:\n  listen: %s\n  url: http://%s\n", ps[i].http, ps[i].http)
		fmt.Fprintf(&b, "mesh:\n  listen: %s\n  ca: certs/ca.pem\n  cert: certs/%s.pem\n  key: certs/%s-key.pem\n  peers:\n", ps[i].mesh, n, n)
		for j, p := range names {
			if j != i {
				fmt.Fprintf(&b, "    - name: %s\n      addr: %s\n      url: http://%s\n", p, ps[j].mesh, ps[j].http)
			}
		}
		fmt.Fprintf(&b, "refdb:\n  backend: embedded\n  endpoints: [%q]\n", refdbName)
		fmt.Fprintf(&b, "replication:\n  mode: %s\n", opts.Mode)
		if opts.Acks > 0 {
			fmt.Fprintf(&b, "  acks: %d\n", opts.Acks)
		}
		if opts.Timeout > 0 {
			fmt.Fprintf(&b, "  timeout: %s\n", opts.Timeout)
		}
		if err := os.MkdirAll(filepath.Dir(paths[i]), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(paths[i], []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}
