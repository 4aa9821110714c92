package coord

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
)

// The rules of an import (import.go): pure functions of the refs of the
// copies and of the refdb's records, table-tested in importrules_test.go.

// reservedRefs is the namespace of the refs sitesync writes for itself
// (the HEAD record): bookkeeping of a site, not history a user wrote, so an
// import neither seeds nor compares them.
const reservedRefs = "refs/sitesync/"

// importExamples is how many differing refs a refusal names: enough to see
// what kind of difference it is, short enough to read in one line.
const importExamples = 5

// importable keeps, of a repository's refs, those an import seeds and
// compares: refs under refs/ that the refdb guards, outside sitesync's own
// namespace. refs holds direct refs only (git.ListDirectRefs): a symbolic
// ref is not a value to guard.
func importable(refs map[string]string, guarded func(string) bool) map[string]string {
	out := make(map[string]string, len(refs))
	for ref, v := range refs {
		if strings.HasPrefix(ref, "refs/") && !strings.HasPrefix(ref, reservedRefs) && guarded(ref) {
			out[ref] = v
		}
	}
	return out
}

// RefDiff is one ref whose value differs between the copy being imported
// (Want) and another (Got): a site's repository or the refdb.
// refmove.ZeroID stands for "absent".
type RefDiff struct {
	Ref  string `json:"ref"`
	Want string `json:"want"`
	Got  string `json:"got"`
}

// Difference is how another copy of a project differs from the one being
// imported.
type Difference struct {
	Differ   int       `json:"differ,omitempty"`   // refs both hold, at different values
	Missing  int       `json:"missing,omitempty"`  // refs of the import the other copy lacks
	Extra    int       `json:"extra,omitempty"`    // refs of the other copy the import lacks
	Examples []RefDiff `json:"examples,omitempty"` // the first differing or extra refs, by name
}

// Conflicts says whether the other copy holds history the import would
// silently leave out or overwrite: a ref at another value, or a ref the
// import lacks. A copy that only lacks refs is behind, not different.
func (d Difference) Conflicts() bool { return d.Differ > 0 || d.Extra > 0 }

// add merges o, which covers other refs, into d, keeping the examples
// that sort first.
func (d *Difference) add(o Difference) {
	d.Differ += o.Differ
	d.Missing += o.Missing
	d.Extra += o.Extra
	d.Examples = append(d.Examples, o.Examples...)
	slices.SortFunc(d.Examples, func(a, b RefDiff) int { return strings.Compare(a.Ref, b.Ref) })
	if len(d.Examples) > importExamples {
		d.Examples = d.Examples[:importExamples]
	}
}

// compareRefs is how got differs from want, the refs being imported.
func compareRefs(want, got map[string]string) Difference {
	var d Difference
	var ex []RefDiff
	for ref, w := range want {
		switch g, ok := got[ref]; {
		case !ok:
			d.Missing++
		case g != w:
			d.Differ++
			ex = append(ex, RefDiff{Ref: ref, Want: w, Got: g})
		}
	}
	for ref, g := range got {
		if _, ok := want[ref]; !ok {
			d.Extra++
			ex = append(ex, RefDiff{Ref: ref, Want: refmove.ZeroID, Got: g})
		}
	}
	d.add(Difference{Examples: ex})
	return d
}

// describe says in words how the copy at other differs from the one at
// site: "2 refs differ, 1 only at b (refs/heads/main: a has X, b has Y;
// refs/heads/old: only at b, Y)".
func (d Difference) describe(site, other string) string {
	var parts []string
	if d.Differ > 0 {
		parts = append(parts, nRefs(d.Differ)+map[bool]string{true: " differs", false: " differ"}[d.Differ == 1])
	}
	if d.Extra > 0 {
		parts = append(parts, fmt.Sprintf("%s only at %s", nRefs(d.Extra), other))
	}
	if d.Missing > 0 {
		parts = append(parts, fmt.Sprintf("%s only at %s", nRefs(d.Missing), site))
	}
	var ex []string
	for _, e := range d.Examples {
		switch {
		case e.Want == refmove.ZeroID:
			ex = append(ex, fmt.Sprintf("%s: only at %s, %s", e.Ref, other, e.Got))
		case e.Got == refmove.ZeroID:
			ex = append(ex, fmt.Sprintf("%s: %s has %s, %s has none", e.Ref, site, e.Want, other))
		default:
			ex = append(ex, fmt.Sprintf("%s: %s has %s, %s has %s", e.Ref, site, e.Want, other, e.Got))
		}
	}
	s := strings.Join(parts, ", ")
	if len(ex) > 0 {
		s += " (" + strings.Join(ex, "; ")
		if shown := len(d.Examples); shown < d.Differ+d.Extra {
			s += fmt.Sprintf("; %d more", d.Differ+d.Extra-shown)
		}
		s += ")"
	}
	return s
}

// nRefs is "1 ref" or "N refs".
func nRefs(n int) string {
	if n == 1 {
		return "1 ref"
	}
	return fmt.Sprintf("%d refs", n)
}

// seedPlan compares the refs being imported (local) with the refdb's
// records of the project: the refs the refdb holds no value of, to create
// (Old zero, sorted by ref), how many it already holds at the same value,
// and how the refdb differs — a ref at another value, or existing while
// the import lacks it. A tombstone (a ref deleted, or a project deleted
// whose name is used again) holds no value: the ref is created, the
// CAS's "must not exist" holds for it. Records of refs the refdb does not
// guard (any more) are left out.
func seedPlan(local map[string]string, recs []refdb.Record, guarded func(string) bool) (create []refdb.Update, same int, diff Difference) {
	held := make(map[string]string, len(recs))
	for _, r := range recs {
		if !r.Exists() || !guarded(r.Ref) || !strings.HasPrefix(r.Ref, "refs/") || strings.HasPrefix(r.Ref, reservedRefs) {
			continue
		}
		held[r.Ref] = r.Value
	}
	var ex []RefDiff
	for _, ref := range slices.Sorted(maps.Keys(local)) {
		v := local[ref]
		h, ok := held[ref]
		switch {
		case ok && h == v:
			same++
		case ok:
			diff.Differ++
			ex = append(ex, RefDiff{Ref: ref, Want: v, Got: h})
		default:
			diff.Missing++
			create = append(create, refdb.Update{Ref: ref, Old: refmove.ZeroID, New: v})
		}
	}
	for ref, h := range held {
		if _, ok := local[ref]; !ok {
			diff.Extra++
			ex = append(ex, RefDiff{Ref: ref, Want: refmove.ZeroID, Got: h})
		}
	}
	diff.add(Difference{Examples: ex})
	return create, same, diff
}

// batches splits ups into runs of at most limit (refdb.BatchLimit: one
// transaction of the backend each).
func batches[T any](ups []T, limit int) [][]T {
	limit = max(limit, 1)
	var out [][]T
	for len(ups) > 0 {
		n := min(limit, len(ups))
		out = append(out, ups[:n:n])
		ups = ups[n:]
	}
	return out
}

// refsDigest is a digest of a set of refs and their values, the same for
// the same set at every site: sha256 of "value ref\n" lines in ref order,
// in hex.
func refsDigest(refs map[string]string) string {
	h := sha256.New()
	for _, ref := range slices.Sorted(maps.Keys(refs)) {
		fmt.Fprintf(h, "%s %s\n", refs[ref], ref)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// refRange is a run of the refs being imported, in ref order, that one
// compare message carries: the refs in [From, To), To "" for no upper
// bound, From "" for no lower one.
type refRange struct {
	From, To string
	Values   []refValue
}

// compareRanges splits the refs being imported into ranges of at most
// maxRefs refs and about maxBytes of names and values each, which together
// cover every ref name: a ref of the other copy falls in exactly one.
func compareRanges(refs map[string]string, maxRefs, maxBytes int) []refRange {
	names := slices.Sorted(maps.Keys(refs))
	if len(names) == 0 {
		return []refRange{{}}
	}
	var out []refRange
	cur, size := refRange{}, 0
	for _, ref := range names {
		n := len(ref) + len(refs[ref])
		if len(cur.Values) > 0 && (len(cur.Values) >= maxRefs || size+n > maxBytes) {
			cur.To = ref
			out = append(out, cur)
			cur, size = refRange{From: ref}, 0
		}
		cur.Values = append(cur.Values, refValue{Ref: ref, Value: refs[ref]})
		size += n
	}
	return append(out, cur)
}

// inRange says whether ref falls in [from, to) ("" bounds are open).
func inRange(ref, from, to string) bool {
	return ref >= from && (to == "" || ref < to)
}

// reseed is the rule for a seeding batch ups that the refdb refused:
// conflicts are the refs it holds already, and now[i] is this site's value
// of conflicts[i] now. A ref the refdb holds at this site's value was
// created by a write meanwhile (a push of this site adopting it): it
// leaves the batch. One at another value is a difference. It returns the
// batch to try again.
func reseed(ups []refdb.Update, conflicts []refdb.RefConflict, now []string) ([]refdb.Update, Difference) {
	drop := make(map[string]bool, len(conflicts))
	var ex []RefDiff
	var d Difference
	for i, r := range conflicts {
		held := versionOf(r.Current).Value
		if i < len(now) && held == now[i] {
			drop[r.Ref] = true
			continue
		}
		want := refmove.ZeroID
		if i < len(now) {
			want = now[i]
		}
		if want == refmove.ZeroID {
			d.Extra++
		} else {
			d.Differ++
		}
		ex = append(ex, RefDiff{Ref: r.Ref, Want: want, Got: held})
	}
	d.add(Difference{Examples: ex})
	var keep []refdb.Update
	for _, u := range ups {
		if !drop[u.Ref] {
			keep = append(keep, u)
		}
	}
	return keep, d
}
