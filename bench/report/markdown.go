package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// WriteMarkdown writes the run's description and one summary table row per
// workload, target, metric and site.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	m := r.Meta
	fmt.Fprintf(&b, "# sitesync bench — %s\n\n", m.Started.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- machine: %s, %s/%s, %d CPUs", m.Machine.Hostname, m.Machine.OS, m.Machine.Arch, m.Machine.CPUs)
	if m.Machine.CPUModel != "" {
		fmt.Fprintf(&b, " (%s)", m.Machine.CPUModel)
	}
	fmt.Fprintf(&b, ", %s", m.Machine.Go)
	if m.Machine.Git != "" {
		fmt.Fprintf(&b, ", %s", m.Machine.Git)
	}
	fmt.Fprintf(&b, "\n- link: %s\n", m.Link)
	if m.Quick {
		b.WriteString("- mode: --quick (tiny sizes; the figures only show that the harness works)\n")
	}
	if m.Duration > 0 {
		fmt.Fprintf(&b, "- run time: %v\n", m.Duration.Round(time.Second))
	}
	for _, n := range m.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	b.WriteString("\nLatencies are counted from the start of each update. The floor is what the\n" +
		"emulated links allow at best: one one-way delay for \"visible at a peer\", one RTT\n" +
		"to the W-th nearest site for a quorum acknowledgement, size/bandwidth + RTT for a pack.\n")
	if m.Baseline != "" {
		fmt.Fprintf(&b, "The ratio column is p50 divided by the p50 of %q for the same row.\n", m.Baseline)
	}
	b.WriteString("\n| workload | target | metric | site | n | p50 | p90 | p99 | max | throughput | floor | p50/floor | p50/baseline |\n")
	b.WriteString("|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	sums := Summarize(r.Samples, m.Baseline)
	var wire []Summary
	for _, s := range sums {
		if s.Metric.IsWire() {
			wire = append(wire, s)
			continue
		}
		site := s.Site
		if site == "" {
			site = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			s.Workload, s.Target, s.Metric, site, s.N, ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max),
			rate(s.Throughput, m.Link.Bandwidth), floor(s.Floor), ratio(s.RatioFloor), ratio(s.RatioBaseline))
	}
	if len(wire) > 0 {
		writeWire(&b, m, wire)
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func floor(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return ms(d)
}

// ratio has two decimals, or two significant digits below 0.1 (git's ref
// advertisement can make a byte ratio 0.001).
func ratio(f float64) string {
	switch {
	case f == 0:
		return "—"
	case f < 0.1:
		return fmt.Sprintf("%.2g×", f)
	default:
		return fmt.Sprintf("%.2f×", f)
	}
}

// rate is a throughput in Mbit/s and as a share of the link bandwidth.
func rate(bps float64, link int64) string {
	if bps == 0 {
		return "—"
	}
	s := fmt.Sprintf("%.1f Mbit/s", bps*8/1e6)
	if link > 0 {
		s += fmt.Sprintf(" (%.0f%% of link)", 100*bps/float64(link))
	}
	return s
}

// writeWire writes the table of the bytes on the wire per update.
func writeWire(b *strings.Builder, m Meta, wire []Summary) {
	b.WriteString("\n## Bytes on the wire per update\n\n" +
		"Bytes between the origin and one peer for one update (the total over the peers\n" +
		"divided by their number), counted once the update was visible at every peer:\n" +
		"\"both\" is both directions, \"out\" what the origin sent. What each target counts\n" +
		"is in the notes above. raw is the size of the contents of the objects the update\n" +
		"brings (`git rev-list --objects NEW --not OLD`, uncompressed); wire÷raw is the\n" +
		"median (p90) of each update's ratio.\n")
	if m.Baseline != "" {
		fmt.Fprintf(b, "The baseline column is the p50 divided by the p50 of %q.\n", m.Baseline)
	}
	b.WriteString("\n| workload | target | direction | n | p50 | p90 | max | raw p50 | wire÷raw p50 | wire÷raw p90 | p50/baseline |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	// Each target's two rows together, in the order of appearance.
	rank := make(map[string]int)
	for _, s := range wire {
		for _, k := range []string{"w " + s.Workload, "t " + s.Target} {
			if _, ok := rank[k]; !ok {
				rank[k] = len(rank)
			}
		}
	}
	slices.SortStableFunc(wire, func(a, b Summary) int {
		return cmp.Or(rank["w "+a.Workload]-rank["w "+b.Workload], rank["t "+a.Target]-rank["t "+b.Target])
	})
	for _, s := range wire {
		dir := "both"
		if s.Metric == WireOut {
			dir = "out"
		}
		raw := "—"
		if s.RawP50 > 0 {
			raw = size(s.RawP50)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n",
			s.Workload, s.Target, dir, s.N, size(s.WireP50), size(s.WireP90), size(s.WireMax), raw,
			ratio(s.WireRawP50), ratio(s.WireRawP90), ratio(s.RatioBaseline))
	}
}

// size is a byte count, in bytes below 10 KiB so small updates read exactly.
func size(n int64) string {
	switch {
	case n < 10<<10:
		return fmt.Sprintf("%d B", n)
	case n < 10<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}
