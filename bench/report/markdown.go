package report

import (
	"fmt"
	"io"
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
	for _, s := range Summarize(r.Samples, m.Baseline) {
		site := s.Site
		if site == "" {
			site = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			s.Workload, s.Target, s.Metric, site, s.N, ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max),
			rate(s.Throughput, m.Link.Bandwidth), floor(s.Floor), ratio(s.RatioFloor), ratio(s.RatioBaseline))
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

func ratio(f float64) string {
	if f == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", f)
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
