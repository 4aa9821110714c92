package campaign

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Counts are a schedule's write attempts by outcome. A push of one ref, an
// API write and each side of a race push count once.
type Counts struct {
	Acked   int // git reported ok, or the API answered 200
	Refused int // the daemon said no (conflict, quorum not reached, …)
	Failed  int // no answer: timeout, connection refused, the site died
}

func (c Counts) String() string {
	return fmt.Sprintf("%d ack / %d refused / %d failed", c.Acked, c.Refused, c.Failed)
}

// Report is what one schedule did and found.
type Report struct {
	Plan   Plan
	Writes Counts
	// Faults are the faults as injected, with what happened ("crash b
	// @op4 for 6s: died at the crash point").
	Faults     []string
	Violations []Violation
	// Errors are things the harness could not do (start the cluster, run
	// git): the schedule proves nothing, but they are not sitesync's
	// violations.
	Errors []string
	// Converged is how long after the last heal every site held the
	// refdb's values with empty journals and /readyz 200 (how long the
	// campaign waited, if they never did: then Violations say what was
	// left).
	Converged    time.Duration
	Observations int // changes seen by polling the sites
	Elapsed      time.Duration
}

// OK reports whether the schedule ran and found nothing.
func (r *Report) OK() bool { return len(r.Violations) == 0 && len(r.Errors) == 0 }

// Result is "ok", "N violations" or "error".
func (r *Report) Result() string {
	switch {
	case len(r.Errors) > 0:
		return "error"
	case len(r.Violations) > 0:
		return fmt.Sprintf("%d violations", len(r.Violations))
	}
	return "ok"
}

// Details lists the violations and errors, one per line.
func (r *Report) Details() string {
	var b strings.Builder
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "  error: %s\n", e)
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	return b.String()
}

// WriteTable writes one line per report (seed, mode, writes, faults,
// convergence, result) and a summary line.
func WriteTable(w io.Writer, reports []*Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "seed\tmode\twrites (ack/refused/failed)\tfaults\tconverged\telapsed\tresult")
	var sum Counts
	faults, bad, errs := 0, 0, 0
	for _, r := range reports {
		mode := r.Plan.Mode
		if mode == Quorum {
			mode = fmt.Sprintf("quorum/%d", r.Plan.Acks)
		}
		var kinds []string
		for _, f := range r.Plan.Faults {
			kinds = append(kinds, f.Kind.String())
		}
		fmt.Fprintf(tw, "%d\t%s\t%d/%d/%d\t%s\t%v\t%v\t%s\n", r.Plan.Seed, mode,
			r.Writes.Acked, r.Writes.Refused, r.Writes.Failed, strings.Join(kinds, ","),
			r.Converged.Round(100*time.Millisecond), r.Elapsed.Round(time.Second), r.Result())
		sum.Acked += r.Writes.Acked
		sum.Refused += r.Writes.Refused
		sum.Failed += r.Writes.Failed
		faults += len(r.Faults)
		if len(r.Violations) > 0 {
			bad++
		}
		if len(r.Errors) > 0 {
			errs++
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "campaign: %d schedules, writes %s, %d faults injected; %d with violations, %d with harness errors\n",
		len(reports), sum, faults, bad, errs)
}
