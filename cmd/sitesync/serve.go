package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/site"
)

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
	s, err := site.New(ctx, live, site.Options{Log: log})
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
