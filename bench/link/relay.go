package link

import (
	"fmt"
	"log/slog"
	"net/netip"
)

// Config describes one relay.
type Config struct {
	// Listen is the loopback ip:port the relay listens on; port 0 picks a
	// free port (see Addr).
	Listen string
	// Target is the loopback ip:port the relay forwards to.
	Target string
	// Link carries the impairments; nil means a link of its own with zero
	// profiles (reach it with the relay's Link method).
	Link *Link
	// Reverse places the relay's clients on side b of Link and its target on
	// side a: client→target traffic then follows Link's BtoA profile. Use it
	// for the relay that carries a site pair's traffic the other way.
	Reverse bool
	// Logger receives rare events (a failed dial, a mapping table full);
	// nil discards them.
	Logger *slog.Logger
}

// relayBase is what UDP and TCP relays share.
type relayBase struct {
	log     *slog.Logger
	link    *Link
	out, in *pipe // client→target, target→client
	target  netip.AddrPort
	life    lifecycle
	st      counters
}

// init fills b from cfg and returns the address to listen on.
func (b *relayBase) init(cfg Config, proto string) (netip.AddrPort, error) {
	listen, err := loopback(cfg.Listen, true)
	if err != nil {
		return listen, fmt.Errorf("%s relay listen: %w", proto, err)
	}
	target, err := loopback(cfg.Target, false)
	if err != nil {
		return listen, fmt.Errorf("%s relay target: %w", proto, err)
	}
	l := cfg.Link
	if l == nil {
		l, _ = NewLink(Profile{}, Profile{})
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b.log = log.With("component", "link", "proto", proto, "target", target.String())
	b.link = l
	b.out, b.in = &l.dirs[AtoB], &l.dirs[BtoA]
	if cfg.Reverse {
		b.out, b.in = b.in, b.out
	}
	b.target = target
	b.life.init()
	return listen, nil
}

// Link returns the link whose profiles and partition the relay applies.
func (b *relayBase) Link() *Link { return b.link }

// Stats returns the relay's counters so far.
func (b *relayBase) Stats() Stats { return b.st.snapshot() }
