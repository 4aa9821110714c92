package campaign

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
)

// ZeroSHA is the value of an absent ref, in the refdb and in observations.
const ZeroSHA = refmove.ZeroID

// Kind names the invariant a Violation breaks.
type Kind string

const (
	// Lost: an acknowledged write is not in the refdb's history (§4.1).
	Lost Kind = "lost"
	// Landed: a write the client was told was refused (a conflict, the
	// quorum not reached) is in the refdb's history (§3, §4.8).
	Landed Kind = "refused-but-decided"
	// AckRule: an acknowledged API write names fewer holding sites than
	// its ack rule requires (§4.1).
	AckRule Kind = "ack-rule"
	// Chain: a ref's versions do not grow by one per write, or a write's
	// old value is not the value before it (§4.2).
	Chain Kind = "chain"
	// Foreign: a site exposed a value the refdb never held (§4.2).
	Foreign Kind = "foreign"
	// Early: a site exposed a value before the refdb decided it (§4.2).
	Early Kind = "early"
	// Regression: a site moved a ref backwards in version order (§4.3).
	Regression Kind = "regression"
	// MissingObject: a site exposed a ref whose object it does not hold
	// (§4.4).
	MissingObject Kind = "missing-object"
	// Diverged: after healing, a site does not hold the refdb's values
	// within the bound (§4.6).
	Diverged Kind = "diverged"
	// Fsck: git fsck fails at a site after healing.
	Fsck Kind = "fsck"
	// Stuck: after healing, a journal is not empty, /readyz does not
	// answer 200, or a site does not restart (§4.10).
	Stuck Kind = "stuck"
)

// Violation is one broken invariant, with what shows it.
type Violation struct {
	Kind   Kind
	Site   string // "" when no one site is at fault
	Ref    string
	Detail string
}

func (v Violation) String() string {
	var b strings.Builder
	b.WriteString(string(v.Kind))
	if v.Site != "" {
		b.WriteString(" at " + v.Site)
	}
	if v.Ref != "" {
		b.WriteString(" " + v.Ref)
	}
	b.WriteString(": " + v.Detail)
	return b.String()
}

// Rec is one write of a ref as the refdb holds it: the record and the etcd
// revision that wrote it.
type Rec struct {
	Rev int64
	refdb.Record
}

// History is every write of every ref of a project, per ref in revision
// order, as read back from the refdb at the end of a run.
type History map[string][]Rec

// Write is a write a client was answered: a ref of a push, or one update
// of an API write. In Input.Writes it was acknowledged (git said ok, the
// API 200); in Input.Refusals it was refused before its decision.
type Write struct {
	Op   string // which operation: "op 7", "fault 2" (its tripping push), "setup"
	Via  string // "push" or "api"
	Site string // the site the client wrote to
	Ref  string
	// Old is what the client says the ref was: a full object name (API), a
	// prefix of one (a push's porcelain summary) or "" (unknown).
	Old string
	New string // ZeroSHA for a deletion
	Txn string // API: the transaction of the answer; push: ""
	// Acks are the sites the API answer says hold the write; nil for a
	// push (git does not say).
	Acks []string
	// Start and End bracket the client's request: the refdb decided the
	// write in between.
	Start, End time.Time
}

// Observation is a change a site exposed: Ref became Value there (ZeroSHA:
// absent), seen by a read of the site's repository that ended at At.
type Observation struct {
	Site    string
	Ref     string
	Value   string
	At      time.Time
	Missing bool // the object Value names is not in the site's repository
}

// Input is what Check judges.
type Input struct {
	Required     int // sites an acknowledged write must be durable at
	History      History
	Writes       []Write       // acknowledged
	Refusals     []Write       // refused before the decision
	Observations []Observation // in the order each site's reads saw them
}

// Check returns every violation of invariants 1-4 the input shows, sorted
// by kind, site and ref. It is pure: the history, the acknowledged writes
// and the observations are all it knows.
func Check(in Input) []Violation {
	var out []Violation
	out = append(out, checkChains(in.History)...)
	out = append(out, checkWrites(in)...)
	out = append(out, checkRefusals(in)...)
	out = append(out, checkObservations(in.History, in.Observations)...)
	slices.SortStableFunc(out, func(x, y Violation) int {
		return strings.Compare(string(x.Kind)+"\x00"+x.Site+"\x00"+x.Ref, string(y.Kind)+"\x00"+y.Site+"\x00"+y.Ref)
	})
	return out
}

// checkChains: each ref's versions are 1, 2, 3, … in revision order.
func checkChains(h History) []Violation {
	var out []Violation
	for _, ref := range slices.Sorted(maps.Keys(h)) {
		for i, r := range h[ref] {
			if r.Version != uint64(i+1) {
				out = append(out, Violation{Kind: Chain, Ref: ref, Detail: fmt.Sprintf(
					"write %d of the ref (revision %d, txn %s at %s) has version %d, want %d", i+1, r.Rev, r.Txn, r.Site, r.Version, i+1)})
				break // one broken link says it; the rest would repeat it
			}
		}
	}
	return out
}

// before is the value a ref had before h[i]: ZeroSHA before the first.
func before(h []Rec, i int) string {
	if i == 0 {
		return ZeroSHA
	}
	return h[i-1].Value
}

// checkWrites: every acknowledged write is in the history (decided while
// its request ran), its old value was the value before it, and an API
// answer names enough sites.
func checkWrites(in Input) []Violation {
	var out []Violation
	for _, w := range in.Writes {
		if w.Via == "api" && len(w.Acks) < in.Required {
			out = append(out, Violation{Kind: AckRule, Site: w.Site, Ref: w.Ref, Detail: fmt.Sprintf(
				"%s: API write %s acknowledged by %v, the rule needs %d sites", w.Op, w.Txn, w.Acks, in.Required)})
		}
		h := in.History[w.Ref]
		var found []int
		for i, r := range h {
			if r.Value == w.New && (w.Txn == "" || r.Txn == w.Txn) &&
				!r.Time.Before(w.Start.Add(-clockSlack)) && !r.Time.After(w.End.Add(clockSlack)) {
				found = append(found, i)
			}
		}
		if len(found) == 0 {
			out = append(out, Violation{Kind: Lost, Site: w.Site, Ref: w.Ref, Detail: fmt.Sprintf(
				"%s: %s to %s acknowledged %s (txn %q), no refdb write of it decided in %s..%s; history: %s",
				w.Op, w.Via, short(w.New), w.End.Format(timeFmt), w.Txn, w.Start.Format(timeFmt), w.End.Format(timeFmt), describe(h))})
			continue
		}
		if w.Old == "" {
			continue
		}
		ok := false
		for _, i := range found {
			if strings.HasPrefix(before(h, i), w.Old) {
				ok = true
			}
		}
		if !ok {
			i := found[0]
			out = append(out, Violation{Kind: Chain, Site: w.Site, Ref: w.Ref, Detail: fmt.Sprintf(
				"%s: %s moved the ref from %s to %s (version %d), but the version before held %s",
				w.Op, w.Via, short(w.Old), short(w.New), h[i].Version, short(before(h, i)))})
		}
	}
	return out
}

// checkRefusals: no refused write is in the history. A refused write's
// record would carry its value and its origin and be decided while its
// request ran; every pushed commit is new, so the value alone names it.
func checkRefusals(in Input) []Violation {
	var out []Violation
	for _, w := range in.Refusals {
		for _, r := range in.History[w.Ref] {
			if r.Value == w.New && r.Site == w.Site && (w.New != ZeroSHA || r.Version > 0) &&
				!r.Time.Before(w.Start.Add(-clockSlack)) && !r.Time.After(w.End.Add(clockSlack)) {
				out = append(out, Violation{Kind: Landed, Site: w.Site, Ref: w.Ref, Detail: fmt.Sprintf(
					"%s: %s to %s was refused at %s, yet the refdb took it as version %d (txn %s, decided %s)",
					w.Op, w.Via, short(w.New), w.End.Format(timeFmt), r.Version, r.Txn, r.Time.Format(timeFmt))})
				break
			}
		}
	}
	return out
}

// checkObservations: every value a site exposed was held by the refdb,
// after it decided it; no site goes back in version order; every exposed
// object is there.
func checkObservations(h History, obs []Observation) []Violation {
	type key struct{ site, ref string }
	lo := map[key]uint64{}        // the lowest version the site's last value can be
	seen := map[key]Observation{} // the observation that set lo
	var out []Violation
	for _, o := range obs {
		k := key{o.Site, o.Ref}
		if o.Missing {
			out = append(out, Violation{Kind: MissingObject, Site: o.Site, Ref: o.Ref, Detail: fmt.Sprintf(
				"exposed %s at %s without the object", short(o.Value), o.At.Format(timeFmt))})
		}
		recs := h[o.Ref]
		// Versions the value can be: 0 (never written) for an absent ref,
		// and every version that held the value.
		var cands []uint64
		if o.Value == ZeroSHA {
			cands = append(cands, 0)
		}
		held, decided := false, false
		for _, r := range recs {
			if r.Value == o.Value {
				held = true
				if !r.Time.After(o.At.Add(clockSlack)) {
					decided = true
					cands = append(cands, r.Version)
				}
			}
		}
		if o.Value != ZeroSHA && !held {
			out = append(out, Violation{Kind: Foreign, Site: o.Site, Ref: o.Ref, Detail: fmt.Sprintf(
				"exposed %s at %s, a value the refdb never held; history: %s", short(o.Value), o.At.Format(timeFmt), describe(recs))})
			continue
		}
		if o.Value != ZeroSHA && !decided {
			out = append(out, Violation{Kind: Early, Site: o.Site, Ref: o.Ref, Detail: fmt.Sprintf(
				"exposed %s at %s, before the refdb decided it; history: %s", short(o.Value), o.At.Format(timeFmt), describe(recs))})
			continue
		}
		// The smallest candidate not below the last one keeps every later
		// choice open: a regression is when none is left.
		next, ok := uint64(0), false
		for _, v := range cands {
			if v >= lo[k] && (!ok || v < next) {
				next, ok = v, true
			}
		}
		if !ok {
			prev := seen[k]
			out = append(out, Violation{Kind: Regression, Site: o.Site, Ref: o.Ref, Detail: fmt.Sprintf(
				"went from %s (version ≥ %d, seen %s) back to %s (versions %v) at %s; history: %s",
				short(prev.Value), lo[k], prev.At.Format(timeFmt), short(o.Value), cands, o.At.Format(timeFmt), describe(recs))})
			continue
		}
		lo[k], seen[k] = next, o
	}
	return out
}

// clockSlack absorbs the difference between the test's clock reading and
// the site's: both are this machine's wall clock, read microseconds apart.
const clockSlack = 5 * time.Millisecond

// timeFmt prints times in violations: the run's wall clock, to the
// millisecond, to line up with the sites' logs.
const timeFmt = "15:04:05.000"

// short abbreviates an object name for messages.
func short(v string) string {
	if v == ZeroSHA {
		return "zero"
	}
	if len(v) > 10 {
		return v[:10]
	}
	return v
}

// describe lists a ref's history for a message.
func describe(h []Rec) string {
	if len(h) == 0 {
		return "(never written)"
	}
	parts := make([]string, len(h))
	for i, r := range h {
		parts[i] = fmt.Sprintf("v%d=%s@%s by %s %s", r.Version, short(r.Value), r.Time.Format(timeFmt), r.Site, r.Txn)
	}
	return strings.Join(parts, ", ")
}

// Converged compares a site's refs with the refdb's current records and
// returns how they differ: a ref the refdb holds that the site lacks or has
// at another value, a ref the refdb deleted or never held that the site
// has. Only refs under refs/ count (HEAD is a symbolic ref, not a value).
func Converged(site string, refdbNow []refdb.Record, local map[string]string) []Violation {
	want := map[string]string{}
	for _, r := range refdbNow {
		if strings.HasPrefix(r.Ref, "refs/") && r.Exists() {
			want[r.Ref] = r.Value
		}
	}
	var out []Violation
	for _, ref := range slices.Sorted(maps.Keys(want)) {
		if got, ok := local[ref]; !ok {
			out = append(out, Violation{Kind: Diverged, Site: site, Ref: ref, Detail: fmt.Sprintf("missing; the refdb holds %s", short(want[ref]))})
		} else if got != want[ref] {
			out = append(out, Violation{Kind: Diverged, Site: site, Ref: ref, Detail: fmt.Sprintf("holds %s; the refdb holds %s", short(got), short(want[ref]))})
		}
	}
	for _, ref := range slices.Sorted(maps.Keys(local)) {
		if _, ok := want[ref]; !ok && strings.HasPrefix(ref, "refs/") {
			out = append(out, Violation{Kind: Diverged, Site: site, Ref: ref, Detail: fmt.Sprintf("holds %s; the refdb has no such ref", short(local[ref]))})
		}
	}
	return out
}
