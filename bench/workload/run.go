package workload

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sitesync/sitesync/bench/report"
)

// VisibleTimeout bounds the wait for one update to reach every peer. A git
// push of a 256 MiB pack over a 1 Gbit/s, 100 ms RTT link takes a few
// seconds, a NoteDb update well under one; a minute means the system is
// stuck, not slow.
const VisibleTimeout = time.Minute

// Config is what every runner needs.
type Config struct {
	Topology Topology
	Git      *Git
	// Dir is scratch space for the runner's client repositories.
	Dir string
	Log *slog.Logger
}

func (c Config) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// meter reads a Metered Target's traffic between updates.
type meter struct {
	m    Metered // nil: t is not Metered
	last Traffic
}

// newMeter takes the first reading, before the first update.
func newMeter(ctx context.Context, t Target) (*meter, error) {
	m, ok := t.(Metered)
	if !ok {
		return &meter{}, nil
	}
	last, err := m.Traffic(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s traffic: %w", t.Name(), err)
	}
	return &meter{m: m, last: last}, nil
}

// next returns the traffic since the last reading.
func (m *meter) next(ctx context.Context) (Traffic, error) {
	now, err := m.m.Traffic(ctx)
	if err != nil {
		return Traffic{}, err
	}
	d := now.Sub(m.last)
	m.last = now
	return d, nil
}

// measure performs one update and returns its samples. mt, if it meters
// t, is read once every peer holds the update, outside the timed span:
// what the Target exchanged since the previous reading is this update's
// (the updates are sequential; late bytes of one update, an
// acknowledgement after the value was visible, count in the next).
func measure(ctx context.Context, cfg Config, t Target, mt *meter, workload string, seq int, u Update) ([]report.Sample, error) {
	w := 1
	if q, ok := t.(Quorum); ok {
		w = q.AckSites()
	}
	start := time.Now()
	acked, err := t.Write(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("%s update %d (%s): %w", workload, seq, u.Ref, err)
	}
	base := report.Sample{Workload: workload, Target: t.Name(), Seq: seq, Ref: u.Ref, Bytes: u.Bytes, Raw: u.Raw, Start: start}
	ack := base
	ack.Metric, ack.Latency, ack.Floor = report.Ack, acked.Sub(start), cfg.Topology.AckFloor(w, u.Bytes)
	out := []report.Sample{ack}

	sites := t.Sites()
	seen := make([]time.Time, len(sites))
	vctx, cancel := context.WithTimeout(ctx, VisibleTimeout)
	defer cancel()
	g, gctx := errgroup.WithContext(vctx)
	for i, site := range sites {
		g.Go(func() error {
			at, err := t.Visible(gctx, site, u.Ref, u.New)
			if err != nil {
				return fmt.Errorf("%s update %d: %s at site %q: %w", workload, seq, u.Ref, site, err)
			}
			seen[i] = at
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	all := base
	all.Metric, all.Floor = report.VisibleAll, 0
	for i, site := range sites {
		v := base
		v.Metric, v.Site, v.Latency, v.Floor = report.Visible, site, seen[i].Sub(start), cfg.Topology.VisibleFloor(site, u.Bytes)
		out = append(out, v)
		all.Latency, all.Floor = max(all.Latency, v.Latency), max(all.Floor, v.Floor)
	}
	if len(sites) > 0 {
		out = append(out, all)
	}
	if mt != nil && mt.m != nil && len(sites) > 0 {
		d, err := mt.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s update %d: traffic: %w", workload, seq, err)
		}
		peers := int64(len(sites))
		w := base
		w.Metric, w.Wire = report.Wire, (d.Out+d.In)/peers
		wo := base
		wo.Metric, wo.Wire = report.WireOut, d.Out/peers
		out = append(out, w, wo)
	}
	cfg.log().Debug("update done", "workload", workload, "target", t.Name(), "seq", seq, "ref", u.Ref,
		"ack", ack.Latency, "visible_all", all.Latency)
	return out, nil
}
