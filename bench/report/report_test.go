package report

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{name: "empty", sorted: nil, p: 50, want: 0},
		{name: "one value", sorted: ms(7), p: 99, want: 7 * time.Millisecond},
		{name: "p50 of 4", sorted: ms(1, 2, 3, 4), p: 50, want: 2 * time.Millisecond},
		{name: "p50 of 5", sorted: ms(1, 2, 3, 4, 5), p: 50, want: 3 * time.Millisecond},
		{name: "p90 of 10", sorted: ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), p: 90, want: 9 * time.Millisecond},
		{name: "p99 of 10 is the max", sorted: ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), p: 99, want: 10 * time.Millisecond},
		{name: "p100", sorted: ms(1, 2, 3), p: 100, want: 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Percentile(tt.sorted, tt.p))
		})
	}
}

// sampleRun is two targets, ten updates each, with known latencies.
func sampleRun() *Report {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &Report{Meta: Meta{Started: t0, Baseline: "git-push",
		Link: LinkProfile{Sites: []string{"a", "b", "c"}, Delay: 50 * time.Millisecond, Bandwidth: 125e6}}}
	for _, tg := range []struct {
		name  string
		scale time.Duration
	}{{"git-push", 10 * time.Millisecond}, {"sitesync/quorum", 5 * time.Millisecond}} {
		for i := range 10 {
			start := t0.Add(time.Duration(i) * time.Second)
			lat := time.Duration(i+1) * tg.scale
			r.Samples = append(r.Samples,
				Sample{Workload: "push", Target: tg.name, Seq: i, Ref: "refs/heads/main", Metric: Ack, Start: start, Latency: lat},
				Sample{Workload: "push", Target: tg.name, Seq: i, Ref: "refs/heads/main", Metric: Visible, Site: "b", Start: start, Latency: 10 * lat, Floor: 50 * time.Millisecond},
				Sample{Workload: "push", Target: tg.name, Seq: i, Ref: "refs/heads/main", Metric: VisibleAll, Start: start, Latency: 10 * lat, Floor: 50 * time.Millisecond, Bytes: 1 << 20},
			)
		}
	}
	return r
}

func TestSummarize(t *testing.T) {
	r := sampleRun()
	sums := Summarize(r.Samples, r.Meta.Baseline)
	require.Len(t, sums, 6)
	// Rows are grouped by metric: ack, visible_all, visible; targets keep
	// their order within a metric.
	var order []string
	for _, s := range sums {
		order = append(order, s.Target+" "+string(s.Metric))
	}
	require.Equal(t, []string{
		"git-push ack", "sitesync/quorum ack",
		"git-push visible_all", "sitesync/quorum visible_all",
		"git-push visible", "sitesync/quorum visible",
	}, order)
	gp, ss := sums[2], sums[3]
	require.Equal(t, 10, gp.N)
	require.Equal(t, 500*time.Millisecond, gp.P50)
	require.Equal(t, 900*time.Millisecond, gp.P90)
	require.Equal(t, time.Second, gp.P99)
	require.Equal(t, time.Second, gp.Max)
	require.Equal(t, 50*time.Millisecond, gp.Floor)
	require.InDelta(t, 10.0, gp.RatioFloor, 1e-9)
	require.InDelta(t, 1.0, gp.RatioBaseline, 1e-9)
	require.InDelta(t, 0.5, ss.RatioBaseline, 1e-9)
	// Median of 1 MiB / (100 ms … 1 s): the 5th smallest rate, 1 MiB/0.6 s.
	require.InDelta(t, float64(1<<20)/0.6, gp.Throughput, 1)
	require.Zero(t, sums[0].RatioFloor, "an ack without floor has no ratio")
}

// wireRun is sampleRun with the bytes on the wire of each update: git-push
// sends 1000+i bytes out and gets 500 back, sitesync sends 100+i and gets
// 10; every update brings 400 raw bytes.
func wireRun() *Report {
	r := sampleRun()
	for _, s := range r.Samples {
		if s.Metric != VisibleAll {
			continue
		}
		out, in := int64(1000+s.Seq), int64(500)
		if s.Target != "git-push" {
			out, in = int64(100+s.Seq), 10
		}
		w := Sample{Workload: s.Workload, Target: s.Target, Seq: s.Seq, Ref: s.Ref, Start: s.Start, Raw: 400}
		both, o := w, w
		both.Metric, both.Wire = Wire, out+in
		o.Metric, o.Wire = WireOut, out
		r.Samples = append(r.Samples, both, o)
	}
	return r
}

func TestSummarizeWire(t *testing.T) {
	r := wireRun()
	require.NoError(t, r.Check())
	var wire []Summary
	for _, s := range Summarize(r.Samples, r.Meta.Baseline) {
		if s.Metric.IsWire() {
			wire = append(wire, s)
		}
	}
	require.Len(t, wire, 4)
	gp, ss, gpOut := wire[0], wire[1], wire[2]
	require.Equal(t, "git-push wire", gp.Target+" "+string(gp.Metric))
	require.Equal(t, "sitesync/quorum wire", ss.Target+" "+string(ss.Metric))
	require.Equal(t, "git-push wire_out", gpOut.Target+" "+string(gpOut.Metric))
	require.Equal(t, 10, gp.N)
	require.EqualValues(t, 1504, gp.WireP50) // 5th of 1500…1509
	require.EqualValues(t, 1508, gp.WireP90)
	require.EqualValues(t, 1509, gp.WireMax)
	require.EqualValues(t, 400, gp.RawP50)
	require.InDelta(t, 1504.0/400, gp.WireRawP50, 1e-9)
	require.InDelta(t, 1508.0/400, gp.WireRawP90, 1e-9)
	require.InDelta(t, 1.0, gp.RatioBaseline, 1e-9)
	require.InDelta(t, 114.0/1504, ss.RatioBaseline, 1e-9)
	require.EqualValues(t, 1004, gpOut.WireP50)
	require.Zero(t, gp.P50, "a wire row has no latency")

	bad := Report{Samples: []Sample{{Workload: "w", Target: "t", Metric: Wire, Wire: -1}}}
	require.Error(t, bad.Check())
}

func TestWriteMarkdownWire(t *testing.T) {
	var b strings.Builder
	require.NoError(t, wireRun().WriteMarkdown(&b))
	md := b.String()
	require.Contains(t, md, "## Bytes on the wire per update")
	// Each target's rows together, both directions first.
	i := strings.Index(md, "| push | git-push | both | 10 | 1504 B | 1508 B | 1509 B | 400 B | 3.76× | 3.77× | 1.00× |")
	j := strings.Index(md, "| push | git-push | out | 10 | 1004 B |")
	k := strings.Index(md, "| push | sitesync/quorum | both | 10 | 114 B | 118 B | 119 B | 400 B | 0.28× | 0.29× | 0.076× |")
	require.True(t, i >= 0 && j > i && k > j, "%s", md)
	// The latency table keeps its rows.
	require.Equal(t, 6+4, strings.Count(md, "\n| push |"))
}

func TestWriteDir(t *testing.T) {
	r := sampleRun()
	require.NoError(t, r.Check())
	dir := t.TempDir()
	files, err := r.WriteDir(dir)
	require.NoError(t, err)
	require.Len(t, files, 4)

	f, err := os.Open(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	defer f.Close()
	back, err := ReadJSON(f)
	require.NoError(t, err)
	require.Equal(t, len(r.Samples), len(back.Samples))
	require.Equal(t, r.Samples[5].Latency, back.Samples[5].Latency)
	require.True(t, r.Samples[5].Start.Equal(back.Samples[5].Start))

	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	require.NoError(t, err)
	require.Contains(t, string(md), "| push | sitesync/quorum | visible_all | — | 10 | 250.0 ms |")
	require.Contains(t, string(md), "0.50×")
	require.Equal(t, 6, strings.Count(string(md), "\n| push |"))

	for _, name := range []string{"push-cdf.png", "push-lag.png"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		img, err := png.Decode(bytes.NewReader(b))
		require.NoError(t, err, name)
		require.Greater(t, img.Bounds().Dx(), 100)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		r    Report
		ok   bool
	}{
		{name: "empty", r: Report{}},
		{name: "negative", r: Report{Samples: []Sample{{Workload: "w", Target: "t", Metric: Ack, Latency: -1}}}},
		{name: "visible without site", r: Report{Samples: []Sample{{Workload: "w", Target: "t", Metric: Visible}}}},
		{name: "ok", r: Report{Samples: []Sample{{Workload: "w", Target: "t", Metric: Visible, Site: "b"}}}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Check()
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}
