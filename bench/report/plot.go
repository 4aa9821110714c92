package report

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plot sizes: large enough to read a legend of five targets.
const (
	plotWidth  = 8 * vg.Inch
	plotHeight = 5 * vg.Inch
)

// WritePlots draws, for each workload, the latency CDF of each target's
// acknowledgement and visible-everywhere times (<workload>-cdf.png) and the
// replication lag of each update over the run (<workload>-lag.png). It
// returns the files written.
func (r *Report) WritePlots(dir string) ([]string, error) {
	var workloads []string
	for _, s := range r.Samples {
		if !slices.Contains(workloads, s.Workload) {
			workloads = append(workloads, s.Workload)
		}
	}
	var files []string
	for _, w := range workloads {
		var ws []Sample
		for _, s := range r.Samples {
			if s.Workload == w {
				ws = append(ws, s)
			}
		}
		cdf, err := cdfPlot(w, ws)
		if err != nil {
			return files, err
		}
		p := filepath.Join(dir, w+"-cdf.png")
		if err := cdf.Save(plotWidth, plotHeight, p); err != nil {
			return files, fmt.Errorf("save %s: %w", p, err)
		}
		files = append(files, p)
		lag, err := lagPlot(w, ws)
		if err != nil {
			return files, err
		}
		p = filepath.Join(dir, w+"-lag.png")
		if err := lag.Save(plotWidth, plotHeight, p); err != nil {
			return files, fmt.Errorf("save %s: %w", p, err)
		}
		files = append(files, p)
	}
	return files, nil
}

// series groups the latencies of one target and metric in sample order.
type series struct {
	name    string
	target  int // index of the target in the workload, for its colour
	ack     bool
	samples []Sample
}

func group(samples []Sample, keep func(Sample) bool) []series {
	var out []series
	var targets []string
	idx := make(map[string]int)
	for _, s := range samples {
		ti := slices.Index(targets, s.Target)
		if ti < 0 {
			ti = len(targets)
			targets = append(targets, s.Target)
		}
		if !keep(s) {
			continue
		}
		name := s.Target + " " + string(s.Metric)
		i, ok := idx[name]
		if !ok {
			i = len(out)
			idx[name] = i
			out = append(out, series{name: name, target: ti, ack: s.Metric == Ack})
		}
		out[i].samples = append(out[i].samples, s)
	}
	return out
}

// style gives a target the same colour in every plot of a workload, and
// draws acknowledgements dashed.
func style(p *plot.Plot, g series, l *plotter.Line) {
	l.Color = plotutil.Color(g.target)
	if g.ack {
		l.Dashes = plotutil.Dashes(1)
	}
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(g.name, l)
}

// minPlotMs keeps latencies positive on the CDF's logarithmic axis.
const minPlotMs = 0.01

func cdfPlot(workload string, samples []Sample) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = workload + ": latency CDF"
	p.X.Label.Text = "latency (ms, log scale)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Label.Text = "fraction of updates"
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	all := group(samples, func(s Sample) bool { return s.Metric == Ack || s.Metric == VisibleAll })
	for _, g := range all {
		lat := make([]float64, len(g.samples))
		for j, s := range g.samples {
			lat[j] = max(msf(s.Latency), minPlotMs)
		}
		slices.Sort(lat)
		// A step function: at each latency the fraction jumps by 1/n.
		pts := make(plotter.XYs, 0, 2*len(lat))
		for j, v := range lat {
			pts = append(pts, plotter.XY{X: v, Y: float64(j) / float64(len(lat))})
			pts = append(pts, plotter.XY{X: v, Y: float64(j+1) / float64(len(lat))})
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("plot %s %s: %w", workload, g.name, err)
		}
		style(p, g, l)
	}
	if len(all) == 0 {
		p.X.Scale, p.X.Tick.Marker = plot.LinearScale{}, plot.DefaultTicks{}
		p.X.Max = 1
		p.Title.Text += " — no samples"
	}
	return p, nil
}

func lagPlot(workload string, samples []Sample) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = workload + ": replication lag (time until every peer holds the update)"
	p.X.Label.Text = "time since the target's first update (s)"
	p.Y.Label.Text = "lag (ms)"
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	all := group(samples, func(s Sample) bool { return s.Metric == VisibleAll })
	for _, g := range all {
		t0 := g.samples[0].Start
		pts := make(plotter.XYs, 0, len(g.samples))
		for _, s := range g.samples {
			t0 = minTime(t0, s.Start)
		}
		for _, s := range g.samples {
			pts = append(pts, plotter.XY{X: s.Start.Sub(t0).Seconds(), Y: msf(s.Latency)})
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("plot %s %s: %w", workload, g.name, err)
		}
		style(p, g, l)
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, fmt.Errorf("plot %s %s: %w", workload, g.name, err)
		}
		sc.Color = l.Color
		sc.Radius = vg.Points(2)
		p.Add(sc)
	}
	if len(all) == 0 {
		// Keep an empty plot valid: gonum needs a non-degenerate range.
		p.X.Max, p.Y.Max = 1, 1
		p.Title.Text += " — no samples"
	}
	return p, nil
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
