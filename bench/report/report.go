package report

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Metric names what a Sample measures.
type Metric string

const (
	// Ack is the time from the start of an update until the system under
	// test acknowledged it to the writer.
	Ack Metric = "ack"
	// Visible is the time from the start of an update until one peer site
	// (Sample.Site) held it.
	Visible Metric = "visible"
	// VisibleAll is the time from the start of an update until every peer
	// site held it.
	VisibleAll Metric = "visible_all"
	// Wire is the bytes the system exchanged between the origin and its
	// peers for one update, both directions, per peer (Sample.Wire), counted
	// once the update was visible at every peer; Sample.Raw is what the
	// update's objects weigh. Its Latency and Floor are 0.
	Wire Metric = "wire"
	// WireOut is the part of Wire the origin sent.
	WireOut Metric = "wire_out"
)

// IsWire reports whether m counts bytes on the wire rather than a latency.
func (m Metric) IsWire() bool { return m == Wire || m == WireOut }

// Sample is one measured latency.
type Sample struct {
	Workload string `json:"workload"` // push, pack, notedb
	Target   string `json:"target"`   // git-push, git-fetch, sitesync/quorum …
	Seq      int    `json:"seq"`      // index of the update in its run
	Ref      string `json:"ref"`
	Metric   Metric `json:"metric"`
	Site     string `json:"site,omitempty"` // for Visible
	// Bytes is the size of the objects the update added, when the workload
	// knows it (the pack workload); throughput is Bytes/Latency.
	Bytes int64 `json:"bytes,omitempty"`
	// Wire is, for the Wire and WireOut metrics, the bytes counted on the
	// wire for the update, per peer.
	Wire int64 `json:"wire_bytes,omitempty"`
	// Raw is the size of the contents of the objects the update brings
	// (not compressed, not encoded), when the workload knows it.
	Raw int64 `json:"raw_bytes,omitempty"`
	// Start is when the update was started (wall clock).
	Start time.Time `json:"start"`
	// Latency is counted from Start.
	Latency time.Duration `json:"latency_ns"`
	// Floor is the least Latency the emulated links allow (0: none, e.g. a
	// local acknowledgement).
	Floor time.Duration `json:"floor_ns"`
}

// Machine describes the host a run was made on.
type Machine struct {
	Hostname string `json:"hostname"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model,omitempty"`
	Go       string `json:"go"`
	Git      string `json:"git,omitempty"`
}

// LinkProfile is the emulated network of a run: every pair of sites is joined
// by a link with this one-way delay and bandwidth in each direction.
type LinkProfile struct {
	Sites     []string      `json:"sites"`
	Delay     time.Duration `json:"delay_ns"`
	Jitter    time.Duration `json:"jitter_ns,omitempty"`
	Bandwidth int64         `json:"bandwidth_bytes_per_s"` // 0: unlimited
}

func (l LinkProfile) String() string {
	bw := "unlimited"
	if l.Bandwidth > 0 {
		bw = fmt.Sprintf("%g Mbit/s", float64(l.Bandwidth)*8/1e6)
	}
	s := fmt.Sprintf("%d sites, %v one-way between every pair, %s", len(l.Sites), l.Delay, bw)
	if l.Jitter > 0 {
		s += fmt.Sprintf(", jitter ±%v", l.Jitter)
	}
	return s
}

// Meta says how a run was made.
type Meta struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Quick    bool          `json:"quick"`
	Machine  Machine       `json:"machine"`
	Link     LinkProfile   `json:"link"`
	// Baseline is the target the ratio column divides by.
	Baseline string `json:"baseline,omitempty"`
	// Notes are free-form lines about the run (corpus, sizes, options).
	Notes []string `json:"notes,omitempty"`
}

// Report is a whole run.
type Report struct {
	Meta    Meta     `json:"meta"`
	Samples []Sample `json:"samples"`
}

// File names written by WriteDir.
const (
	JSONFile     = "results.json"
	MarkdownFile = "summary.md"
)

// WriteJSON writes the report, every sample included.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

// ReadJSON reads what WriteJSON wrote.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("decode report: %w", err)
	}
	return &r, nil
}

// WriteDir writes results.json, summary.md and the plots into dir (created
// if missing) and returns the files written.
func (r *Report) WriteDir(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report dir: %w", err)
	}
	var files []string
	write := func(name string, render func(io.Writer) error) error {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		err = render(f)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("report: %w", cerr)
		}
		if err != nil {
			return err
		}
		files = append(files, p)
		return nil
	}
	if err := write(JSONFile, r.WriteJSON); err != nil {
		return files, err
	}
	if err := write(MarkdownFile, r.WriteMarkdown); err != nil {
		return files, err
	}
	pngs, err := r.WritePlots(dir)
	return append(files, pngs...), err
}

// Summary is the digest of the samples of one workload, target and metric
// (and site, for Visible).
type Summary struct {
	Workload string        `json:"workload"`
	Target   string        `json:"target"`
	Metric   Metric        `json:"metric"`
	Site     string        `json:"site,omitempty"`
	N        int           `json:"n"`
	P50      time.Duration `json:"p50_ns"`
	P90      time.Duration `json:"p90_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
	// Throughput is the median of Bytes/Latency in bytes per second (0 when
	// the samples carry no sizes).
	Throughput float64 `json:"throughput_bytes_per_s,omitempty"`
	// Floor is the median floor of the samples.
	Floor time.Duration `json:"floor_ns"`
	// RatioFloor is P50/Floor (0 when there is no floor).
	RatioFloor float64 `json:"ratio_floor,omitempty"`
	// RatioBaseline is P50 divided by the baseline target's P50 for the same
	// workload, metric and site (0 when there is none).
	RatioBaseline float64 `json:"ratio_baseline,omitempty"`

	// For the Wire and WireOut metrics (the latency fields are then 0, and
	// RatioBaseline divides WireP50 by the baseline's): the nearest-rank
	// percentiles of Sample.Wire, the median of Sample.Raw, and the median
	// and 90th percentile of each update's Wire/Raw (updates whose Raw is
	// known).
	WireP50    int64   `json:"wire_p50_bytes,omitempty"`
	WireP90    int64   `json:"wire_p90_bytes,omitempty"`
	WireMax    int64   `json:"wire_max_bytes,omitempty"`
	RawP50     int64   `json:"raw_p50_bytes,omitempty"`
	WireRawP50 float64 `json:"wire_raw_p50,omitempty"`
	WireRawP90 float64 `json:"wire_raw_p90,omitempty"`
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it. It returns 0 for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration { return nearestRank(sorted, p) }

func nearestRank[T cmp.Ordered](sorted []T, p float64) T {
	if len(sorted) == 0 {
		var zero T
		return zero
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

type key struct {
	workload, target string
	metric           Metric
	site             string
}

// Summarize digests samples, in the order each (workload, target, metric,
// site) first appears. baseline names the target the ratio column divides
// by ("" for none).
func Summarize(samples []Sample, baseline string) []Summary {
	var order []key
	groups := make(map[key][]Sample)
	for _, s := range samples {
		k := key{s.Workload, s.Target, s.Metric, s.Site}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s)
	}
	// Keep each workload's rows together, metric by metric, so the table
	// reads workload by workload; targets keep their order of appearance.
	wl := make(map[string]int)
	for _, k := range order {
		if _, ok := wl[k.workload]; !ok {
			wl[k.workload] = len(wl)
		}
	}
	slices.SortStableFunc(order, func(a, b key) int {
		if a.workload != b.workload {
			return wl[a.workload] - wl[b.workload]
		}
		if c := metricRank(a.metric) - metricRank(b.metric); c != 0 {
			return c
		}
		if a.site != b.site {
			if a.site < b.site {
				return -1
			}
			return 1
		}
		return 0
	})
	out := make([]Summary, 0, len(order))
	for _, k := range order {
		g := groups[k]
		lat := make([]time.Duration, 0, len(g))
		floors := make([]time.Duration, 0, len(g))
		var rates []float64
		for _, s := range g {
			lat = append(lat, s.Latency)
			floors = append(floors, s.Floor)
			if s.Bytes > 0 && s.Latency > 0 {
				rates = append(rates, float64(s.Bytes)/s.Latency.Seconds())
			}
		}
		slices.Sort(lat)
		slices.Sort(floors)
		slices.Sort(rates)
		sum := Summary{
			Workload: k.workload, Target: k.target, Metric: k.metric, Site: k.site,
			N: len(lat), P50: Percentile(lat, 50), P90: Percentile(lat, 90), P99: Percentile(lat, 99), Max: lat[len(lat)-1],
			Floor: Percentile(floors, 50),
		}
		if k.metric.IsWire() {
			wireSummary(&sum, g)
		}
		if len(rates) > 0 {
			sum.Throughput = rates[(len(rates)-1)/2]
		}
		if sum.Floor > 0 {
			sum.RatioFloor = float64(sum.P50) / float64(sum.Floor)
		}
		out = append(out, sum)
	}
	if baseline != "" {
		base := make(map[key]float64)
		p50 := func(s Summary) float64 {
			if s.Metric.IsWire() {
				return float64(s.WireP50)
			}
			return float64(s.P50)
		}
		for _, s := range out {
			if s.Target == baseline {
				base[key{s.Workload, "", s.Metric, s.Site}] = p50(s)
			}
		}
		for i, s := range out {
			if b := base[key{s.Workload, "", s.Metric, s.Site}]; b > 0 {
				out[i].RatioBaseline = p50(s) / b
			}
		}
	}
	return out
}

// wireSummary fills the wire fields of sum from the samples g of a wire
// metric.
func wireSummary(sum *Summary, g []Sample) {
	wire := make([]int64, 0, len(g))
	var raw []int64
	var ratio []float64
	for _, s := range g {
		wire = append(wire, s.Wire)
		if s.Raw > 0 {
			raw = append(raw, s.Raw)
			ratio = append(ratio, float64(s.Wire)/float64(s.Raw))
		}
	}
	slices.Sort(wire)
	slices.Sort(raw)
	slices.Sort(ratio)
	sum.WireP50, sum.WireP90, sum.WireMax = nearestRank(wire, 50), nearestRank(wire, 90), wire[len(wire)-1]
	sum.RawP50 = nearestRank(raw, 50)
	sum.WireRawP50, sum.WireRawP90 = nearestRank(ratio, 50), nearestRank(ratio, 90)
}

func metricRank(m Metric) int {
	switch m {
	case Ack:
		return 0
	case VisibleAll:
		return 1
	case Visible:
		return 2
	case Wire:
		return 3
	case WireOut:
		return 4
	default:
		return 5
	}
}

// ErrNoSamples is returned by Check for a report without samples.
var ErrNoSamples = errors.New("report has no samples")

// Check reports the first inconsistency of a report: no samples, a negative
// latency, a sample without workload, target or metric.
func (r *Report) Check() error {
	if len(r.Samples) == 0 {
		return ErrNoSamples
	}
	for i, s := range r.Samples {
		switch {
		case s.Workload == "" || s.Target == "" || s.Metric == "":
			return fmt.Errorf("sample %d: missing workload, target or metric", i)
		case s.Latency < 0 || s.Floor < 0:
			return fmt.Errorf("sample %d (%s %s %s): negative duration", i, s.Workload, s.Target, s.Metric)
		case s.Metric == Visible && s.Site == "":
			return fmt.Errorf("sample %d (%s %s): visible without site", i, s.Workload, s.Target)
		case s.Wire < 0 || s.Raw < 0:
			return fmt.Errorf("sample %d (%s %s %s): negative byte count", i, s.Workload, s.Target, s.Metric)
		}
	}
	return nil
}
