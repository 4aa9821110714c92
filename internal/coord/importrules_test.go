package coord

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/refdb"
)

func TestImportable(t *testing.T) {
	refs := map[string]string{
		"refs/heads/main":               one,
		"refs/changes/01/1/1":           one,
		"refs/cache-automerge/01/1":     two,
		"refs/sitesync/head":            two,
		"HEAD":                          one,
		"refs/changes/01/1/meta":        two,
		"FETCH_HEAD":                    one,
		"refs/remotes/origin/something": one,
	}
	ig, err := refdb.NewIgnore(refdb.DefaultIgnore)
	require.NoError(t, err)
	got := importable(refs, ig.Guarded)
	require.Equal(t, map[string]string{
		"refs/heads/main":               one,
		"refs/changes/01/1/1":           one,
		"refs/changes/01/1/meta":        two,
		"refs/remotes/origin/something": one,
	}, got)
}

func TestCompareRefs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		want, got map[string]string
		diff      Difference
		conflicts bool
	}{
		{name: "both empty"},
		{name: "other empty", want: map[string]string{"refs/heads/a": one, "refs/heads/b": two},
			diff: Difference{Missing: 2}},
		{name: "identical", want: map[string]string{"refs/heads/a": one}, got: map[string]string{"refs/heads/a": one}},
		{name: "subset at the same values", want: map[string]string{"refs/heads/a": one, "refs/heads/b": two},
			got: map[string]string{"refs/heads/b": two}, diff: Difference{Missing: 1}},
		{name: "a value differs", want: map[string]string{"refs/heads/a": one, "refs/heads/b": two},
			got:       map[string]string{"refs/heads/a": two, "refs/heads/b": two},
			diff:      Difference{Differ: 1, Examples: []RefDiff{{Ref: "refs/heads/a", Want: one, Got: two}}},
			conflicts: true},
		{name: "a ref only at the other copy", want: map[string]string{"refs/heads/a": one},
			got:       map[string]string{"refs/heads/a": one, "refs/heads/z": two},
			diff:      Difference{Extra: 1, Examples: []RefDiff{{Ref: "refs/heads/z", Want: zero, Got: two}}},
			conflicts: true},
		{name: "import empty, other not", got: map[string]string{"refs/heads/a": one},
			diff:      Difference{Extra: 1, Examples: []RefDiff{{Ref: "refs/heads/a", Want: zero, Got: one}}},
			conflicts: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := compareRefs(tc.want, tc.got)
			require.Equal(t, tc.diff, d)
			require.Equal(t, tc.conflicts, d.Conflicts())
		})
	}
}

// Many differences: counted whole, and the first few by name kept as
// examples, also when summed over ranges.
func TestDifferenceExamples(t *testing.T) {
	want, got := map[string]string{}, map[string]string{}
	for i := range 20 {
		want[fmt.Sprintf("refs/heads/b%02d", i)] = one
		got[fmt.Sprintf("refs/heads/b%02d", i)] = two
		got[fmt.Sprintf("refs/heads/a%02d", i)] = two
	}
	d := compareRefs(want, got)
	require.Equal(t, 20, d.Differ)
	require.Equal(t, 20, d.Extra)
	require.Len(t, d.Examples, importExamples)
	for i, e := range d.Examples {
		require.Equal(t, fmt.Sprintf("refs/heads/a%02d", i), e.Ref)
	}

	var sum Difference
	for _, r := range compareRanges(want, 3, 1<<20) {
		w, g := map[string]string{}, map[string]string{}
		for _, v := range r.Values {
			w[v.Ref] = v.Value
		}
		for ref, v := range got {
			if inRange(ref, r.From, r.To) {
				g[ref] = v
			}
		}
		sum.add(compareRefs(w, g))
	}
	require.Equal(t, d, sum, "comparing range by range adds up to comparing whole")

	msg := d.describe("site a", "site b")
	require.Contains(t, msg, "20 refs differ, 20 refs only at site b")
	require.Contains(t, msg, "refs/heads/a00: only at site b, "+two)
	require.Contains(t, msg, "; 35 more)")
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Difference
		want string
	}{
		{"one differs", Difference{Differ: 1, Examples: []RefDiff{{Ref: "refs/heads/main", Want: one, Got: two}}},
			"1 ref differs (refs/heads/main: site a has " + one + ", site b has " + two + ")"},
		{"missing only", Difference{Missing: 3}, "3 refs only at site a"},
		{"deleted at the other", Difference{Differ: 1, Examples: []RefDiff{{Ref: "refs/heads/x", Want: one, Got: zero}}},
			"1 ref differs (refs/heads/x: site a has " + one + ", site b has none)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.d.describe("site a", "site b"))
		})
	}
}

func TestSeedPlan(t *testing.T) {
	rec := func(ref, value string, version uint64) refdb.Record {
		return refdb.Record{Ref: ref, Value: value, Version: version, Site: "b"}
	}
	guarded := func(ref string) bool { return !strings.HasPrefix(ref, "refs/cache-automerge/") }
	for _, tc := range []struct {
		name   string
		local  map[string]string
		recs   []refdb.Record
		create []refdb.Update
		same   int
		diff   Difference
	}{
		{name: "refdb empty: every ref created", local: map[string]string{"refs/heads/b": two, "refs/heads/a": one},
			create: []refdb.Update{{Ref: "refs/heads/a", Old: zero, New: one}, {Ref: "refs/heads/b", Old: zero, New: two}},
			diff:   Difference{Missing: 2}},
		{name: "refdb holds the same: nothing to do", local: map[string]string{"refs/heads/a": one},
			recs: []refdb.Record{rec("refs/heads/a", one, 3)}, same: 1},
		{name: "refdb holds part: the rest created", local: map[string]string{"refs/heads/a": one, "refs/heads/b": two},
			recs: []refdb.Record{rec("refs/heads/a", one, 1)}, same: 1,
			create: []refdb.Update{{Ref: "refs/heads/b", Old: zero, New: two}}, diff: Difference{Missing: 1}},
		{name: "refdb holds another value", local: map[string]string{"refs/heads/a": one},
			recs: []refdb.Record{rec("refs/heads/a", two, 2)},
			diff: Difference{Differ: 1, Examples: []RefDiff{{Ref: "refs/heads/a", Want: one, Got: two}}}},
		{name: "a tombstone of a ref the repository has: created again", local: map[string]string{"refs/heads/a": one},
			recs:   []refdb.Record{rec("refs/heads/a", zero, 4)},
			create: []refdb.Update{{Ref: "refs/heads/a", Old: zero, New: one}}, diff: Difference{Missing: 1}},
		{name: "refdb holds a ref the repository lacks", local: map[string]string{"refs/heads/a": one},
			recs: []refdb.Record{rec("refs/heads/a", one, 1), rec("refs/heads/z", two, 1)}, same: 1,
			diff: Difference{Extra: 1, Examples: []RefDiff{{Ref: "refs/heads/z", Want: zero, Got: two}}}},
		{name: "tombstone of a ref neither has", local: map[string]string{"refs/heads/a": one},
			recs: []refdb.Record{rec("refs/heads/a", one, 1), rec("refs/heads/gone", zero, 2)}, same: 1},
		{name: "unguarded and reserved records are not compared", local: map[string]string{"refs/heads/a": one},
			recs: []refdb.Record{rec("refs/heads/a", one, 1), rec("refs/cache-automerge/x", two, 1), rec("refs/sitesync/head", two, 1)}, same: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			create, same, diff := seedPlan(tc.local, tc.recs, guarded)
			require.Equal(t, tc.create, create)
			require.Equal(t, tc.same, same)
			require.Equal(t, tc.diff, diff)
		})
	}
}

func TestReseed(t *testing.T) {
	ups := []refdb.Update{
		{Ref: "refs/heads/a", Old: zero, New: one},
		{Ref: "refs/heads/b", Old: zero, New: one},
		{Ref: "refs/heads/c", Old: zero, New: one},
	}
	held := func(ref, value string) refdb.RefConflict {
		return refdb.RefConflict{Ref: ref, Want: zero, Current: refdb.Record{Ref: ref, Value: value, Version: 1, Site: "a"}}
	}
	for _, tc := range []struct {
		name      string
		conflicts []refdb.RefConflict
		now       []string
		keep      []refdb.Update
		diff      Difference
	}{
		{name: "adopted by a push meanwhile: left out", conflicts: []refdb.RefConflict{held("refs/heads/b", two)},
			now: []string{two}, keep: []refdb.Update{ups[0], ups[2]}},
		{name: "every ref adopted", conflicts: []refdb.RefConflict{held("refs/heads/a", one), held("refs/heads/b", one), held("refs/heads/c", two)},
			now: []string{one, one, two}},
		{name: "another value: a difference", conflicts: []refdb.RefConflict{held("refs/heads/a", two)},
			now: []string{one}, keep: ups,
			diff: Difference{Differ: 1, Examples: []RefDiff{{Ref: "refs/heads/a", Want: one, Got: two}}}},
		{name: "gone here, held there", conflicts: []refdb.RefConflict{held("refs/heads/c", two)},
			now: []string{zero}, keep: ups,
			diff: Difference{Extra: 1, Examples: []RefDiff{{Ref: "refs/heads/c", Want: zero, Got: two}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keep, diff := reseed(ups, tc.conflicts, tc.now)
			require.Equal(t, tc.keep, keep)
			require.Equal(t, tc.diff, diff)
		})
	}
}

func TestBatches(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		limit int
		sizes []int
	}{
		{"none", 0, 128, nil},
		{"one batch", 5, 128, []int{5}},
		{"exactly the limit", 128, 128, []int{128}},
		{"etcd's default limit", 300, 128, []int{128, 128, 44}},
		{"a limit of 0 is 1", 2, 0, []int{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ups := make([]int, tc.n)
			for i := range ups {
				ups[i] = i
			}
			var sizes []int
			next := 0
			for _, b := range batches(ups, tc.limit) {
				sizes = append(sizes, len(b))
				for _, v := range b {
					require.Equal(t, next, v, "batches keep the order")
					next++
				}
			}
			require.Equal(t, tc.sizes, sizes)
			require.Equal(t, tc.n, next)
		})
	}
}

func TestCompareRanges(t *testing.T) {
	refs := map[string]string{}
	for i := range 10 {
		refs[fmt.Sprintf("refs/heads/%02d", i)] = one
	}
	for _, tc := range []struct {
		name             string
		maxRefs, maxSize int
		sizes            []int
	}{
		{"one range", 100, 1 << 20, []int{10}},
		{"by count", 4, 1 << 20, []int{4, 4, 2}},
		{"by size", 100, 3 * (len("refs/heads/00") + 40), []int{3, 3, 3, 1}},
		{"a ref larger than the size still goes", 100, 1, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := compareRanges(refs, tc.maxRefs, tc.maxSize)
			var sizes []int
			for i, r := range rs {
				sizes = append(sizes, len(r.Values))
				if i == 0 {
					require.Empty(t, r.From, "the first range is open below")
				} else {
					require.Equal(t, rs[i-1].To, r.From, "ranges are contiguous")
				}
				for _, v := range r.Values {
					require.True(t, inRange(v.Ref, r.From, r.To))
				}
				m := importMsg{Project: "p", Op: importCompare, From: r.From, To: r.To, Values: r.Values}
				require.NoError(t, m.check(), "a range is a valid compare message")
			}
			require.Empty(t, rs[len(rs)-1].To, "the last range is open above")
			require.Equal(t, tc.sizes, sizes)
		})
	}
	require.Equal(t, []refRange{{}}, compareRanges(nil, 10, 10), "no refs: one range covering every name")
}

func TestRefsDigest(t *testing.T) {
	a := map[string]string{"refs/heads/a": one, "refs/heads/b": two}
	b := map[string]string{"refs/heads/b": two, "refs/heads/a": one}
	require.Equal(t, refsDigest(a), refsDigest(b), "the digest does not depend on map order")
	require.True(t, isDigest(refsDigest(a)))
	require.NotEqual(t, refsDigest(a), refsDigest(map[string]string{"refs/heads/a": two, "refs/heads/b": one}))
	require.NotEqual(t, refsDigest(a), refsDigest(map[string]string{"refs/heads/a": one}))
}

// The imports table: one import of a project at a time, one copy of it at
// a time (a second asking waits for the first), and what status shows.
func TestImportProgress(t *testing.T) {
	c := &Coordinator{}
	require.NoError(t, c.imports.begin("p", ImportProgress{Project: "p", Role: "origin", Origin: "a", Phase: "reading refs"}))
	require.ErrorIs(t, c.imports.begin("p", ImportProgress{Project: "p"}), ErrImportRefused, "a second import of p")
	c.imports.phase("p", "seeding the refdb", 300, 128)

	run, start := c.imports.startCopy("q", "b")
	require.True(t, start)
	again, start := c.imports.startCopy("q", "b")
	require.False(t, start, "a copy in progress is not started twice")
	require.Same(t, run, again)
	c.imports.copyPhase(run, "fetching objects", 10, 4)

	got := c.Imports()
	require.Len(t, got, 2)
	require.Equal(t, ImportProgress{Project: "p", Role: "origin", Origin: "a", Phase: "seeding the refdb", Refs: 300, Done: 128}, got[0])
	require.Equal(t, "q", got[1].Project)
	require.Equal(t, "copy", got[1].Role)
	require.Equal(t, "b", got[1].Origin)
	require.Equal(t, "fetching objects", got[1].Phase)
	require.Equal(t, [2]int{10, 4}, [2]int{got[1].Refs, got[1].Done})

	c.imports.endCopy("q", run, 7, nil)
	<-again.done
	require.Equal(t, 7, again.refs)
	c.imports.end("p")
	require.Empty(t, c.Imports())
	require.NoError(t, c.imports.begin("p", ImportProgress{Project: "p"}), "p may be imported again")
}
