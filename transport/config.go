package transport

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for the zero fields of a Config. Each says why it has that value.
const (
	// DefaultMaxFrame bounds one control frame (request, response, stream
	// header) from a peer. NoteDb deltas are ≤ 64 KiB and PREPARE batches a
	// few MiB; 16 MiB leaves headroom while keeping a hostile peer from making
	// us allocate more than that per stream.
	DefaultMaxFrame int64 = 16 << 20

	// DefaultStreamWindow is the largest receive window of one stream. The
	// link this is sized for is 1 Gbit/s at 200 ms RTT: its bandwidth×delay
	// product is 125 MB/s × 0.2 s = 25 MB ≈ 23.8 MiB; a single pack stream
	// needs at least that much in flight to fill the pipe, 32 MiB leaves room
	// for RTT spikes.
	DefaultStreamWindow uint64 = 32 << 20

	// DefaultConnWindow is the largest receive window of a whole connection:
	// two full-speed streams (e.g. two packs) at once, 2 × 32 MiB.
	DefaultConnWindow uint64 = 64 << 20

	// DefaultIdleTimeout is the longest a peer may stay silent before it is
	// declared down. Keep-alives are sent far more often, so on a healthy
	// 200 ms link only a partition or a crash trips it.
	DefaultIdleTimeout = 10 * time.Second

	// DefaultKeepAlive is the period of QUIC PINGs on an idle connection: a
	// third of the idle timeout, so two may be lost before the peer is
	// declared down, and often enough to keep RTT samples fresh.
	DefaultKeepAlive = DefaultIdleTimeout / 3

	// DefaultDialTimeout bounds one connection attempt (QUIC + TLS handshake
	// + HELLO): ten 200 ms round trips with room for loss.
	DefaultDialTimeout = 5 * time.Second

	// DefaultBackoffMin and DefaultBackoffMax bound the reconnect backoff:
	// start fast (a restart of the peer takes about a second), cap low enough
	// that a healed partition is used within seconds.
	DefaultBackoffMin = 100 * time.Millisecond
	DefaultBackoffMax = 5 * time.Second
)

// Peer is another site of the mesh.
type Peer struct {
	// Name is the site name; the peer's certificate must carry it as its
	// common name.
	Name string
	// Addr is the UDP host:port of the peer's mesh listener.
	Addr string
}

// Config configures a Mesh. Zero durations and sizes take the defaults above.
type Config struct {
	Site     string // this site's name (required); our certificate must carry it
	Listen   string // UDP host:port to listen on (required)
	CAFile   string // PEM CA that signs every site certificate (required)
	CertFile string // PEM certificate of this site (required)
	KeyFile  string // PEM private key of CertFile (required)
	Peers    []Peer // the other sites; the only ones allowed to connect
	StateDir string // directory keeping the instance id (required)

	MaxFrame     int64  // largest control frame accepted; DefaultMaxFrame
	StreamWindow uint64 // max QUIC receive window per stream; DefaultStreamWindow
	ConnWindow   uint64 // max QUIC receive window per connection; DefaultConnWindow

	IdleTimeout time.Duration // DefaultIdleTimeout
	KeepAlive   time.Duration // DefaultKeepAlive
	DialTimeout time.Duration // DefaultDialTimeout
	BackoffMin  time.Duration // DefaultBackoffMin
	BackoffMax  time.Duration // DefaultBackoffMax
}

// maxFrameLimit is the largest MaxFrame a config may ask for: the frame length
// travels as a uint32 and one frame is held in memory.
const maxFrameLimit = 1 << 30

// withDefaults returns cfg with its zero fields set to the defaults.
func (cfg Config) withDefaults() Config {
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.StreamWindow == 0 {
		cfg.StreamWindow = DefaultStreamWindow
	}
	if cfg.ConnWindow == 0 {
		cfg.ConnWindow = DefaultConnWindow
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = min(DefaultKeepAlive, cfg.IdleTimeout/3)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffMin)
	}
	return cfg
}

// Validate reports every problem of a config (after defaults) at once.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Site == "" {
		errs = append(errs, errors.New("site name is empty"))
	}
	if cfg.Listen == "" {
		errs = append(errs, errors.New("listen address is empty"))
	}
	for name, v := range map[string]string{"ca": cfg.CAFile, "cert": cfg.CertFile, "key": cfg.KeyFile, "state dir": cfg.StateDir} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s path is empty", name))
		}
	}
	seen := map[string]bool{cfg.Site: true}
	for _, p := range cfg.Peers {
		switch {
		case p.Name == "":
			errs = append(errs, errors.New("peer with empty name"))
		case seen[p.Name]:
			errs = append(errs, fmt.Errorf("peer %q listed twice or equal to this site", p.Name))
		case p.Addr == "":
			errs = append(errs, fmt.Errorf("peer %q has no address", p.Name))
		}
		seen[p.Name] = true
	}
	if cfg.MaxFrame < 1024 || cfg.MaxFrame > maxFrameLimit {
		errs = append(errs, fmt.Errorf("max frame %d out of range [1KiB, 1GiB]", cfg.MaxFrame))
	}
	if cfg.KeepAlive <= 0 || cfg.KeepAlive > cfg.IdleTimeout/2 {
		errs = append(errs, fmt.Errorf("keep-alive %v must be positive and at most half the idle timeout %v", cfg.KeepAlive, cfg.IdleTimeout))
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		errs = append(errs, fmt.Errorf("backoff max %v below min %v", cfg.BackoffMax, cfg.BackoffMin))
	}
	if len(errs) > 0 {
		return fmt.Errorf("transport config: %w", errors.Join(errs...))
	}
	return nil
}
