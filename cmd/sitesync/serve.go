package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/frontdoor"
	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/backend"
)

// shutdownGrace is how long in-flight requests (a clone in progress) get to
// finish after SIGTERM before their connections are closed.
const shutdownGrace = 30 * time.Second

// readyTimeout bounds the refdb check of /readyz: a load balancer polls it
// every few seconds and must get an answer before its own timeout.
const readyTimeout = 2 * time.Second

// readHeaderTimeout bounds a client that opens a connection and sends no
// request: long enough for any WAN, short enough to shed idle sockets.
const readHeaderTimeout = 30 * time.Second

func newServeCmd() *cobra.Command {
	var path string
	var lf logFlags
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run one site",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := lf.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, path, log)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "the site's configuration file (YAML)")
	_ = cmd.MarkFlagRequired("config")
	lf.register(cmd)
	return cmd
}

// serve runs a site until ctx ends.
func serve(ctx context.Context, path string, log *slog.Logger) error {
	live, err := config.NewLive(path, log)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	cfg := live.Current()
	for _, dir := range []string{cfg.Site.Repos, cfg.Site.State} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("site directories: %w", err)
		}
	}
	root, err := git.NewRoot(cfg.Site.Repos)
	if err != nil {
		return err
	}
	repos := git.NewRepos(root)
	defer repos.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := http.NewServeMux()
	metrics.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	store, err := backend.Open(ctx, refdb.Config{
		Backend:   string(cfg.RefDB.Backend),
		Endpoints: cfg.RefDB.Endpoints,
		Prefix:    cfg.RefDB.Prefix,
		Ignore:    cfg.RefDB.Ignore,
	}.Defaults(), log, reg)
	if err != nil {
		return fmt.Errorf("refdb: %w", err)
	}
	defer store.Close()
	ready := func() error {
		pctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		if err := refdb.Ping(pctx, store); err != nil {
			return fmt.Errorf("refdb unreachable: %w", err)
		}
		return nil
	}

	front := frontdoor.New(frontdoor.Config{Site: cfg.Site.Name, Repos: repos, Ready: ready, Extra: metrics, Log: log,
		Route: shardRoute(live, nil)})
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	srv := &http.Server{Handler: front, ReadHeaderTimeout: readHeaderTimeout}
	log.Info("site serving", "site", cfg.Site.Name, "http", ln.Addr().String(), "repos", root.Dir(), "refdb", string(cfg.RefDB.Backend))

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return live.Run(ctx) })
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		log.Info("shutting down", "grace", shutdownGrace)
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return g.Wait()
}
