package link

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Dir is one direction of a Link.
type Dir int

const (
	// AtoB carries data from side a to side b: for a relay with Reverse unset,
	// from its clients to its target.
	AtoB Dir = iota
	// BtoA carries data from side b to side a.
	BtoA
)

func (d Dir) String() string {
	switch d {
	case AtoB:
		return "a->b"
	case BtoA:
		return "b->a"
	default:
		return fmt.Sprintf("Dir(%d)", int(d))
	}
}

func (d Dir) valid() bool { return d == AtoB || d == BtoA }

// Profile is the impairment of one direction of a link. The zero Profile
// forwards at once, without loss, at whatever speed the machine allows.
type Profile struct {
	// Delay is the one-way propagation delay.
	Delay time.Duration
	// Jitter spreads each delay uniformly over [Delay-Jitter, Delay+Jitter]
	// (never below zero); data is not reordered, see the package doc.
	Jitter time.Duration
	// Loss is the probability, in [0, 1), that a UDP datagram is dropped.
	// TCP relays ignore it.
	Loss float64
	// Bandwidth is the rate in bytes per second; 0 means unlimited.
	Bandwidth int64
}

// maxDelay bounds Delay and Jitter: far above any real one-way delay (the
// Earth's circumference in fibre is ~200 ms), low enough to catch a unit
// mistake such as "50s" for "50ms".
const maxDelay = 10 * time.Second

// ErrBadProfile is wrapped by every error of Profile.Validate.
var ErrBadProfile = errors.New("bad link profile")

// Validate reports whether p can be applied.
func (p Profile) Validate() error {
	switch {
	case p.Delay < 0 || p.Delay > maxDelay:
		return fmt.Errorf("%w: delay %v outside [0, %v]", ErrBadProfile, p.Delay, maxDelay)
	case p.Jitter < 0 || p.Jitter > maxDelay:
		return fmt.Errorf("%w: jitter %v outside [0, %v]", ErrBadProfile, p.Jitter, maxDelay)
	case math.IsNaN(p.Loss) || p.Loss < 0 || p.Loss >= 1:
		return fmt.Errorf("%w: loss %v outside [0, 1)", ErrBadProfile, p.Loss)
	case p.Bandwidth < 0:
		return fmt.Errorf("%w: bandwidth %d bytes/s is negative", ErrBadProfile, p.Bandwidth)
	}
	return nil
}

func (p Profile) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "delay=%v", p.Delay)
	if p.Jitter != 0 {
		fmt.Fprintf(&b, ",jitter=%v", p.Jitter)
	}
	if p.Loss != 0 {
		fmt.Fprintf(&b, ",loss=%s", strconv.FormatFloat(p.Loss, 'g', -1, 64))
	}
	if p.Bandwidth != 0 {
		fmt.Fprintf(&b, ",bw=%s", FormatRate(p.Bandwidth))
	}
	return b.String()
}

// txTime is how long n bytes occupy a link of bw bytes/s.
func txTime(n int, bw int64) time.Duration {
	if bw <= 0 {
		return 0
	}
	return time.Duration(int64(n) * int64(time.Second) / bw)
}

// rateUnits maps a unit suffix to bytes/s per unit. Bit rates are decimal (as
// link speeds are quoted); byte rates have both decimal and binary prefixes.
var rateUnits = map[string]float64{
	"bit": 1.0 / 8, "kbit": 1e3 / 8, "Kbit": 1e3 / 8, "Mbit": 1e6 / 8, "Gbit": 1e9 / 8, "Tbit": 1e12 / 8,
	"bps": 1.0 / 8, "kbps": 1e3 / 8, "Kbps": 1e3 / 8, "Mbps": 1e6 / 8, "Gbps": 1e9 / 8, "Tbps": 1e12 / 8,
	"B/s": 1, "kB/s": 1e3, "KB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9, "TB/s": 1e12,
	"KiB/s": 1 << 10, "MiB/s": 1 << 20, "GiB/s": 1 << 30, "TiB/s": 1 << 40,
}

// maxRate (1 PB/s) keeps every rate and its bit count inside an int64.
const maxRate = 1 << 50

// ErrBadRate is wrapped by every error of ParseRate.
var ErrBadRate = errors.New("bad rate")

// ParseRate reads a rate such as "1Gbit", "100Mbit/s", "20Mbps", "10MiB/s" or
// "1.5MB/s" and returns bytes per second. Bit units (bit, kbit, Mbit, Gbit,
// Tbit, or …bps) are decimal; byte units need "/s" and may be decimal (kB/s,
// MB/s, GB/s) or binary (KiB/s, MiB/s, GiB/s). "0", "unlimited" and "none" mean
// no limit and return 0.
func ParseRate(s string) (int64, error) {
	switch strings.TrimSpace(s) {
	case "0", "unlimited", "none":
		return 0, nil
	case "":
		return 0, fmt.Errorf("%w: empty", ErrBadRate)
	}
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool {
		return (r < '0' || r > '9') && r != '.'
	})
	if i == 0 {
		return 0, fmt.Errorf("%w %q: want a number then a unit, e.g. 100Mbit or 10MiB/s", ErrBadRate, s)
	}
	if i < 0 {
		return 0, fmt.Errorf("%w %q: missing unit (bit, kbit, Mbit, Gbit, B/s, KiB/s, MiB/s, MB/s …)", ErrBadRate, s)
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if strings.HasSuffix(unit, "bit/s") {
		unit = strings.TrimSuffix(unit, "/s")
	}
	per, ok := rateUnits[unit]
	if !ok {
		return 0, fmt.Errorf("%w %q: unknown unit %q (bit, kbit, Mbit, Gbit, B/s, KiB/s, MiB/s, MB/s …)", ErrBadRate, s, unit)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%w %q: %v", ErrBadRate, s, err)
	}
	bps := v * per
	switch {
	case bps == 0:
		return 0, nil
	case bps < 1:
		return 0, fmt.Errorf("%w %q: below 1 byte/s", ErrBadRate, s)
	case bps > maxRate:
		return 0, fmt.Errorf("%w %q: too large", ErrBadRate, s)
	}
	return int64(math.Round(bps)), nil
}

// FormatRate writes bytes/s as ParseRate reads it, in the largest bit unit
// that is exact, else in B/s. 0 is "unlimited".
func FormatRate(bps int64) string {
	if bps == 0 {
		return "unlimited"
	}
	bits := bps * 8
	for _, u := range []struct {
		name string
		div  int64
	}{{"Tbit", 1e12}, {"Gbit", 1e9}, {"Mbit", 1e6}, {"kbit", 1e3}} {
		if bits%u.div == 0 {
			return strconv.FormatInt(bits/u.div, 10) + u.name
		}
	}
	return strconv.FormatInt(bps, 10) + "B/s"
}
