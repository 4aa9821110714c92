package refdb

import (
	"fmt"
	"time"
)

// Backend names accepted in Config.Backend.
const (
	BackendTiKV     = "tikv"
	BackendEtcd     = "etcd"
	BackendEmbedded = "embedded"
	BackendNone     = "none"
)

// Config selects and configures a backend; package config composes it under
// the `refdb:` key (DESIGN.md §7). The zero value plus Backend is usable:
// Defaults fills the rest.
type Config struct {
	// Backend is tikv | etcd | embedded (demo and tests only) | none.
	Backend string `mapstructure:"backend" yaml:"backend"`
	// Endpoints are PD addresses for tikv, etcd client URLs or host:port
	// for etcd, and the instance name for embedded (stores opened with the
	// same name in one process share their data; default "default").
	Endpoints []string `mapstructure:"endpoints" yaml:"endpoints"`
	// Prefix is prepended to every key, so several deployments can share
	// one cluster. Default "/sitesync".
	Prefix string `mapstructure:"prefix" yaml:"prefix"`
	// DialTimeout bounds connecting at Open. Default 5s: long enough for a
	// PD leader election, short enough that a wrong address fails fast.
	DialTimeout time.Duration `mapstructure:"dial_timeout" yaml:"dial_timeout"`
	// Ignore are glob patterns of refs the refdb does not guard (see
	// Ignore). Nil means DefaultIgnore; an empty non-nil list guards all.
	Ignore []string `mapstructure:"ignore" yaml:"ignore"`
	// MaxTxnOps is etcd's --max-txn-ops: the most refs one etcd
	// transaction takes (a larger write is decided in several, see
	// BatchLimiter). Default etcd's own, 128. Other backends ignore it.
	MaxTxnOps int `mapstructure:"max_txn_ops" yaml:"max_txn_ops"`
}

// DefaultMaxTxnOps is etcd's default --max-txn-ops.
const DefaultMaxTxnOps = 128

// DefaultPrefix is the default key prefix.
const DefaultPrefix = "/sitesync"

// DefaultDialTimeout is the default Config.DialTimeout.
const DefaultDialTimeout = 5 * time.Second

// Defaults returns c with empty fields set to their defaults.
func (c Config) Defaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Ignore == nil {
		c.Ignore = append([]string(nil), DefaultIgnore...)
	}
	if c.MaxTxnOps == 0 {
		c.MaxTxnOps = DefaultMaxTxnOps
	}
	if c.Backend == BackendEmbedded && len(c.Endpoints) == 0 {
		c.Endpoints = []string{"default"}
	}
	return c
}

// Validate checks c (after Defaults).
func (c Config) Validate() error {
	switch c.Backend {
	case BackendTiKV, BackendEtcd:
		if len(c.Endpoints) == 0 {
			return fmt.Errorf("refdb.endpoints: required for backend %q", c.Backend)
		}
	case BackendEmbedded, BackendNone:
	case "":
		return fmt.Errorf("refdb.backend: required (tikv, etcd, embedded or none)")
	default:
		return fmt.Errorf("refdb.backend: unknown backend %q (want tikv, etcd, embedded or none)", c.Backend)
	}
	if _, err := NewIgnore(c.Ignore); err != nil {
		return err
	}
	if c.MaxTxnOps < 1 {
		return fmt.Errorf("refdb.max_txn_ops: %d, want at least 1 (etcd's --max-txn-ops)", c.MaxTxnOps)
	}
	if c.DialTimeout < 0 {
		return fmt.Errorf("refdb.dial_timeout: negative")
	}
	return nil
}
