package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Spec describes one relay on the command line (see ParseSpec).
type Spec struct {
	Proto  string // "udp" or "tcp"
	Listen string // loopback ip:port, port 0 picks one
	Target string // loopback ip:port
	AtoB   Profile
	BtoA   Profile
}

// ErrBadSpec is wrapped by every error of ParseSpec.
var ErrBadSpec = errors.New("bad link spec")

const specHelp = "want PROTO:LISTEN->TARGET[,OPTION=VALUE…], e.g. " +
	"udp:127.0.0.1:9000->127.0.0.1:7443,delay=50ms,jitter=2ms,loss=0.01,bw=1Gbit"

// ParseSpec reads a relay spec:
//
//	PROTO:LISTEN->TARGET[,OPTION=VALUE]…
//
// PROTO is udp or tcp; LISTEN and TARGET are IPv4 loopback ip:port. OPTIONs
// are delay and jitter (Go durations: 50ms), loss (0.01 or 1%) and bw (a rate
// for ParseRate: 1Gbit, 100Mbit, 10MiB/s). An option applies to both
// directions; prefixed with "ab." or "ba." (ab.delay=40ms) it applies to one,
// ab being from the relay's clients to its target.
func ParseSpec(s string) (Spec, error) {
	var sp Spec
	fail := func(format string, a ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("%w %q: %s", ErrBadSpec, s, fmt.Sprintf(format, a...))
	}
	// failBy keeps the cause for errors.Is (ErrNotLoopback, ErrBadRate …).
	failBy := func(what string, err error) (Spec, error) {
		return Spec{}, fmt.Errorf("%w %q: %s: %w", ErrBadSpec, s, what, err)
	}
	head, opts, _ := strings.Cut(strings.TrimSpace(s), ",")
	proto, addrs, ok := strings.Cut(head, ":")
	if !ok {
		return fail("missing protocol: %s", specHelp)
	}
	if proto != "udp" && proto != "tcp" {
		return fail("protocol %q: want udp or tcp", proto)
	}
	listen, target, ok := strings.Cut(addrs, "->")
	if !ok {
		return fail("missing \"->\" between listen and target address: %s", specHelp)
	}
	if _, err := loopback(listen, true); err != nil {
		return failBy("listen", err)
	}
	if _, err := loopback(target, false); err != nil {
		return failBy("target", err)
	}
	sp.Proto, sp.Listen, sp.Target = proto, listen, target
	if opts == "" && strings.HasSuffix(s, ",") {
		return fail("empty option")
	}
	if opts != "" {
		for _, kv := range strings.Split(opts, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || v == "" {
				return fail("option %q: want name=value", kv)
			}
			dirs := []*Profile{&sp.AtoB, &sp.BtoA}
			name := k
			switch {
			case strings.HasPrefix(k, "ab."):
				dirs, name = dirs[:1], k[3:]
			case strings.HasPrefix(k, "ba."):
				dirs, name = dirs[1:], k[3:]
			}
			if err := setOption(dirs, name, v); err != nil {
				return failBy(fmt.Sprintf("option %q", k), err)
			}
		}
	}
	for d, p := range []Profile{sp.AtoB, sp.BtoA} {
		if err := p.Validate(); err != nil {
			return failBy(Dir(d).String(), err)
		}
	}
	return sp, nil
}

// ParseSpecs parses one spec per argument, as `sitesync bench link SPEC…`
// takes them.
func ParseSpecs(args []string) ([]Spec, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: none given: %s", ErrBadSpec, specHelp)
	}
	specs := make([]Spec, 0, len(args))
	for _, a := range args {
		s, err := ParseSpec(a)
		if err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	return specs, nil
}

func setOption(dirs []*Profile, name, v string) error {
	var set func(*Profile)
	switch name {
	case "delay", "jitter":
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		if d < 0 {
			return fmt.Errorf("negative duration %v", d)
		}
		if name == "delay" {
			set = func(p *Profile) { p.Delay = d }
		} else {
			set = func(p *Profile) { p.Jitter = d }
		}
	case "loss":
		f, err := parseLoss(v)
		if err != nil {
			return err
		}
		set = func(p *Profile) { p.Loss = f }
	case "bw":
		r, err := ParseRate(v)
		if err != nil {
			return err
		}
		set = func(p *Profile) { p.Bandwidth = r }
	default:
		return errors.New("unknown option: want delay, jitter, loss or bw, optionally prefixed ab. or ba.")
	}
	for _, p := range dirs {
		set(p)
	}
	return nil
}

func parseLoss(v string) (float64, error) {
	pct := strings.HasSuffix(v, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("loss %q: want a probability (0.01) or a percentage (1%%)", v)
	}
	if pct {
		f /= 100
	}
	if f < 0 || f >= 1 {
		return 0, fmt.Errorf("loss %q outside [0, 1)", v)
	}
	return f, nil
}

// String writes the spec as ParseSpec reads it.
func (s Spec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%s->%s", s.Proto, s.Listen, s.Target)
	opt := func(name, ab, ba, zero string) {
		switch {
		case ab == ba && ab != zero:
			fmt.Fprintf(&b, ",%s=%s", name, ab)
		case ab != ba:
			if ab != zero {
				fmt.Fprintf(&b, ",ab.%s=%s", name, ab)
			}
			if ba != zero {
				fmt.Fprintf(&b, ",ba.%s=%s", name, ba)
			}
		}
	}
	a, r := s.AtoB, s.BtoA
	opt("delay", a.Delay.String(), r.Delay.String(), time.Duration(0).String())
	opt("jitter", a.Jitter.String(), r.Jitter.String(), time.Duration(0).String())
	fl := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	opt("loss", fl(a.Loss), fl(r.Loss), "0")
	opt("bw", FormatRate(a.Bandwidth), FormatRate(r.Bandwidth), FormatRate(0))
	return b.String()
}

// Relay is what UDPRelay and TCPRelay have in common.
type Relay interface {
	Addr() net.Addr
	Link() *Link
	Stats() Stats
	Run(ctx context.Context) error
	Close() error
}

var (
	_ Relay = (*UDPRelay)(nil)
	_ Relay = (*TCPRelay)(nil)
)

// Listen creates the relay a spec describes, on a link of its own. Serve it
// with Run.
func Listen(s Spec, log *slog.Logger) (Relay, error) {
	l, err := NewLink(s.AtoB, s.BtoA)
	if err != nil {
		return nil, fmt.Errorf("relay %s: %w", s, err)
	}
	cfg := Config{Listen: s.Listen, Target: s.Target, Link: l, Logger: log}
	switch s.Proto {
	case "udp":
		return ListenUDP(cfg)
	case "tcp":
		return ListenTCP(cfg)
	default:
		return nil, fmt.Errorf("relay %s: %w: protocol %q", s, ErrBadSpec, s.Proto)
	}
}

// Serve runs one relay per spec until ctx ends, and returns after every relay
// has stopped. If a relay cannot listen, none is served and the error says
// which. Each relay's address is logged at Info level.
func Serve(ctx context.Context, specs []Spec, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	relays := make([]Relay, 0, len(specs))
	for _, s := range specs {
		r, err := Listen(s, log)
		if err != nil {
			for _, r := range relays {
				_ = r.Close()
			}
			return err
		}
		relays = append(relays, r)
	}
	g, ctx := errgroup.WithContext(ctx)
	for i, r := range relays {
		s := specs[i]
		log.Info("relay", "component", "link", "proto", s.Proto, "listen", r.Addr().String(),
			"target", s.Target, "ab", s.AtoB.String(), "ba", s.BtoA.String())
		g.Go(func() error { return r.Run(ctx) })
	}
	return g.Wait()
}
