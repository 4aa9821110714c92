package backend

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/embedded"
	"github.com/sitesync/sitesync/refdb/etcd"
	"github.com/sitesync/sitesync/refdb/none"
	"github.com/sitesync/sitesync/refdb/tikv"
)

// Open validates cfg (after cfg.Defaults()) and opens its backend. log and
// reg may be nil (slog.Default(), no metrics exported). ctx bounds connecting
// only; the Store does not keep it. The caller closes the Store.
func Open(ctx context.Context, cfg refdb.Config, log *slog.Logger, reg prometheus.Registerer) (refdb.Store, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open refdb: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	var (
		s   refdb.Store
		err error
	)
	switch cfg.Backend {
	case refdb.BackendTiKV:
		ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
		defer cancel()
		s, err = tikv.Open(ctx, cfg.Endpoints, tikv.Options{Prefix: cfg.Prefix, Log: log})
	case refdb.BackendEtcd:
		s, err = etcd.Open(ctx, cfg.Endpoints, etcd.Options{Prefix: cfg.Prefix, Log: log, DialTimeout: cfg.DialTimeout, MaxTxnOps: cfg.MaxTxnOps})
	case refdb.BackendEmbedded:
		s, err = embedded.Open(cfg.Endpoints[0], tikv.Options{Prefix: cfg.Prefix, Log: log})
	case refdb.BackendNone:
		log.Warn("refdb backend none: ref updates are not checked, sites are not protected against split brain", "component", "refdb")
		s = none.New(nil)
	}
	if err != nil {
		return nil, fmt.Errorf("open refdb %s: %w", cfg.Backend, err)
	}
	return refdb.Instrument(s, cfg.Backend, reg), nil
}
