package coord

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/journal"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
)

// Object ids of the rule tests.
var (
	idA = strings.Repeat("a", 40)
	idB = strings.Repeat("b", 40)
	idC = strings.Repeat("c", 40)
)

func all(string) bool { return true }

func TestValidateWrite(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ups   []Update
		types []string
		want  string // "" accepted; else part of the message
	}{
		{name: "a branch to a commit", ups: []Update{{Ref: "refs/heads/main", Old: refmove.ZeroID, New: idA}}, types: []string{"commit"}},
		{name: "types not known yet", ups: []Update{{Ref: "refs/heads/main", Old: refmove.ZeroID, New: idA}}},
		{name: "a tag to a blob", ups: []Update{{Ref: "refs/tags/v1", Old: refmove.ZeroID, New: idA}}, types: []string{"blob"}},
		{name: "a deletion", ups: []Update{{Ref: "refs/heads/x", Old: idA, New: refmove.ZeroID}}, types: []string{""}},
		{name: "a sequence ref to a blob", ups: []Update{{Ref: "refs/sequences/changes", Old: idB, New: idA}}, types: []string{"blob"}},
		{name: "nothing", ups: nil, want: "no ref updates"},
		{name: "HEAD", ups: []Update{{Ref: "HEAD", Old: refmove.ZeroID, New: idA}}, want: `"HEAD" is not a ref under refs/`},
		{name: "outside refs", ups: []Update{{Ref: "foo", Old: refmove.ZeroID, New: idA}}, want: `"foo" is not a ref under refs/`},
		{name: "dot dot", ups: []Update{{Ref: "refs/heads/a..b", Old: refmove.ZeroID, New: idA}}, want: "contains '..'"},
		{name: "lock suffix", ups: []Update{{Ref: "refs/heads/x.lock", Old: refmove.ZeroID, New: idA}}, want: ".lock"},
		{name: "control character", ups: []Update{{Ref: "refs/heads/a\x01", Old: refmove.ZeroID, New: idA}}, want: "control character"},
		{name: "twice", ups: []Update{{Ref: "refs/heads/x", Old: refmove.ZeroID, New: idA}, {Ref: "refs/heads/x", Old: refmove.ZeroID, New: idB}}, want: "appears twice"},
		{name: "bad id", ups: []Update{{Ref: "refs/heads/x", Old: refmove.ZeroID, New: "abc"}}, want: "not 40 hex"},
		{name: "patch set rewritten", ups: []Update{{Ref: "refs/changes/01/1/1", Old: idA, New: idB}}, want: "patch-set ref"},
		{name: "patch set created", ups: []Update{{Ref: "refs/changes/01/1/1", Old: refmove.ZeroID, New: idB}}, types: []string{"commit"}},
		{name: "a branch to a blob", ups: []Update{{Ref: "refs/heads/x", Old: refmove.ZeroID, New: idA}}, types: []string{"blob"}, want: "refs/heads/x is a branch and can only point at a commit; " + idA + " is a blob"},
		{name: "a branch to a tree", ups: []Update{{Ref: "refs/heads/x", Old: refmove.ZeroID, New: idA}}, types: []string{"tree"}, want: "is a tree"},
		{name: "a branch to a tag", ups: []Update{{Ref: "refs/heads/x", Old: refmove.ZeroID, New: idA}}, types: []string{"tag"}, want: "is a tag"},
		{name: "missing object", ups: []Update{{Ref: "refs/tags/x", Old: refmove.ZeroID, New: idA}}, types: []string{missingType}, want: "is not in this site's repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateWrite(tc.ups, tc.types)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestResolveRule(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	entry := func(deadline time.Time, ups ...journal.Update) journal.Entry {
		return journal.Entry{Txn: "t1", Project: "p", Origin: "a", Prepared: now.Add(-5 * time.Second), Deadline: deadline, Updates: ups}
	}
	before, after := now.Add(time.Minute), now.Add(-time.Second)
	x := journal.Update{Ref: "refs/heads/x", Old: idA, New: idB}
	y := journal.Update{Ref: "refs/heads/y", Old: refmove.ZeroID, New: idC}
	rec := func(ref, value string, version uint64, txn string) refdb.Record {
		return refdb.Record{Ref: ref, Value: value, Version: version, Txn: txn, Site: "a"}
	}
	for _, tc := range []struct {
		name    string
		e       journal.Entry
		recs    []refdb.Record
		guarded func(string) bool
		want    resolution
	}{
		{name: "named", e: entry(before, x), recs: []refdb.Record{rec(x.Ref, idB, 4, "t1")}, want: resolveCommit},
		{name: "named after the deadline", e: entry(after, x), recs: []refdb.Record{rec(x.Ref, idB, 4, "t1")}, want: resolveCommit},
		{name: "undecided", e: entry(before, x), recs: []refdb.Record{rec(x.Ref, idA, 3, "t0")}, want: resolveWait},
		{name: "undecided past the deadline", e: entry(after, x), recs: []refdb.Record{rec(x.Ref, idA, 3, "t0")}, want: resolveAbort},
		{name: "superseded by a later version", e: entry(before, x), recs: []refdb.Record{rec(x.Ref, idC, 5, "t2")}, want: resolveCommit},
		{name: "superseded by a deletion", e: entry(after, x), recs: []refdb.Record{rec(x.Ref, refmove.ZeroID, 5, "t2")}, want: resolveCommit},
		{name: "a creation not decided", e: entry(before, y), recs: []refdb.Record{rec(y.Ref, refmove.ZeroID, 2, "t0")}, want: resolveWait},
		{name: "a ref the refdb never saw", e: entry(before, x), recs: []refdb.Record{{Ref: x.Ref}}, want: resolveWait},
		{name: "a ref the refdb never saw, past the deadline", e: entry(after, x), recs: nil, want: resolveAbort},
		{name: "one ref named, one refused (a non-atomic push)", e: entry(before, x, y), recs: []refdb.Record{rec(x.Ref, idB, 4, "t1"), rec(y.Ref, refmove.ZeroID, 2, "t0")}, want: resolveCommit},
		{name: "one ref named, one refused, past the deadline", e: entry(after, x, y), recs: []refdb.Record{rec(x.Ref, idB, 4, "t1"), rec(y.Ref, refmove.ZeroID, 2, "t0")}, want: resolveCommit},
		{name: "both refs moved on", e: entry(after, x, y), recs: []refdb.Record{rec(x.Ref, idB, 4, "t1"), rec(y.Ref, idA, 3, "t3")}, want: resolveCommit},
		{name: "nothing guarded", e: entry(before, x), guarded: func(string) bool { return false }, want: resolveCommit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.guarded
			if g == nil {
				g = all
			}
			require.Equal(t, tc.want, resolveRule(tc.e, tc.recs, g, now))
		})
	}
}

func TestConfirm(t *testing.T) {
	rec := func(ref, value string, version uint64) refdb.Record {
		return refdb.Record{Ref: ref, Value: value, Version: version, Site: "b"}
	}
	v := func(ref, value string, version uint64) Version {
		return Version{Ref: ref, Value: value, Version: version, Site: "b"}
	}
	cached := func(ref string) bool { return !strings.HasPrefix(ref, "refs/cache-automerge/") }
	for _, tc := range []struct {
		name          string
		announced     []Version
		recs          []refdb.Record
		keep, refused []Version
	}{
		{name: "as the refdb holds", announced: []Version{v("refs/heads/x", idA, 3)}, recs: []refdb.Record{rec("refs/heads/x", idA, 3)},
			keep: []Version{v("refs/heads/x", idA, 3)}},
		{name: "the refdb moved on: its value", announced: []Version{v("refs/heads/x", idA, 3)}, recs: []refdb.Record{rec("refs/heads/x", idB, 5)},
			keep: []Version{v("refs/heads/x", idB, 5)}},
		{name: "a version the refdb never held", announced: []Version{v("refs/heads/x", idC, 9)}, recs: []refdb.Record{rec("refs/heads/x", idA, 3)},
			refused: []Version{v("refs/heads/x", idC, 9)}},
		{name: "the right version with another value", announced: []Version{v("refs/heads/x", idC, 3)}, recs: []refdb.Record{rec("refs/heads/x", idA, 3)},
			refused: []Version{v("refs/heads/x", idC, 3)}},
		{name: "a ref the refdb does not know", announced: []Version{v("refs/heads/x", idC, 1)}, recs: nil,
			refused: []Version{v("refs/heads/x", idC, 1)}},
		{name: "a deletion the refdb holds", announced: []Version{v("refs/heads/x", refmove.ZeroID, 4)}, recs: []refdb.Record{rec("refs/heads/x", "", 4)},
			keep: []Version{v("refs/heads/x", refmove.ZeroID, 4)}},
		{name: "an unguarded ref as announced", announced: []Version{v("refs/cache-automerge/1", idA, 0)}, recs: nil,
			keep: []Version{v("refs/cache-automerge/1", idA, 0)}},
		{name: "mixed", announced: []Version{v("refs/heads/x", idA, 3), v("refs/heads/y", idC, 7)},
			recs: []refdb.Record{rec("refs/heads/y", idB, 6), rec("refs/heads/x", idA, 3)},
			keep: []Version{v("refs/heads/x", idA, 3)}, refused: []Version{v("refs/heads/y", idC, 7)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keep, refused := confirm(tc.announced, tc.recs, cached)
			require.Equal(t, tc.keep, keep)
			require.Equal(t, tc.refused, refused)
		})
	}
}

func TestBehindRefdb(t *testing.T) {
	rec := func(ref, value string, version uint64) refdb.Record {
		return refdb.Record{Ref: ref, Value: value, Version: version, Site: "a"}
	}
	none := func(string) bool { return false }
	recs := []refdb.Record{
		rec("refs/heads/late", idB, 9),
		rec("refs/heads/same", idA, 4),
		rec("refs/heads/wrong", idA, 5), // the site holds another value at a version it thinks current
		rec("refs/heads/gone", refmove.ZeroID, 7),
		rec("refs/heads/new", idC, 2),
		rec("refs/heads/busy", idC, 3),
		rec("refs/cache-automerge/x", idC, 1),
		rec("HEAD", idA, 1),
	}
	local := map[string]string{"refs/heads/same": idA, "refs/heads/wrong": idC, "refs/heads/gone": idA, "refs/heads/late": idA, "refs/heads/busy": idA}
	guarded := func(ref string) bool { return !strings.HasPrefix(ref, "refs/cache-automerge/") }
	inflight := func(ref string) bool { return ref == "refs/heads/busy" }
	got := behindRefdb(recs, local, guarded, inflight)
	require.Equal(t, []Version{
		{Ref: "refs/heads/new", Value: idC, Version: 2, Site: "a"},
		{Ref: "refs/heads/wrong", Value: idA, Version: 5, Site: "a"},
		{Ref: "refs/heads/gone", Value: refmove.ZeroID, Version: 7, Site: "a"},
		{Ref: "refs/heads/late", Value: idB, Version: 9, Site: "a"},
	}, got, "in version order; HEAD, unguarded and in-flight refs left out; values compared, not versions")
	require.Len(t, behindRefdb(recs, local, guarded, none), 5, "without the push in flight its ref is behind too")
	require.Empty(t, behindRefdb(nil, local, guarded, none))
}

func TestForward(t *testing.T) {
	held := map[string]uint64{"refs/heads/x": 5, "refs/heads/y": 2}
	vs := []Version{{Ref: "refs/heads/x", Version: 4}, {Ref: "refs/heads/x", Version: 5}, {Ref: "refs/heads/y", Version: 3}, {Ref: "refs/heads/z", Version: 1}}
	got := forward(vs, func(ref string) uint64 { return held[ref] })
	require.Equal(t, vs[1:], got, "an older version is dropped; the one held is kept (its value may be what is wrong)")
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 3: 8 * time.Second, 5: 32 * time.Second, 6: time.Minute, 50: time.Minute} {
		require.Equal(t, want, backoff(n, 2*time.Second, time.Minute), "after %d failures", n)
	}
}

func TestParking(t *testing.T) {
	var k parking
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	v := Version{Ref: "refs/heads/x", Value: idA, Version: 3}
	k.fail("p", v, errString("trying to write non-commit object"), t0)
	require.Empty(t, k.list(t0.Add(parkAfter-time.Second)), "not parked before parkAfter")
	k.fail("p", v, errString("again"), t0.Add(time.Second))
	got := k.list(t0.Add(parkAfter))
	require.Len(t, got, 1)
	require.Equal(t, Parked{Project: "p", Ref: "refs/heads/x", Value: idA, Version: 3, Reason: "again", Since: t0, Tries: 2}, got[0])
	require.ErrorContains(t, parkedError(got), `1 refs cannot be applied here: refs/heads/x of "p" at version 3`)
	k.clear("p", []Version{{Ref: "refs/heads/x", Version: 2}})
	require.Len(t, k.list(t0.Add(parkAfter)), 1, "an older version does not clear it")
	k.clear("p", []Version{{Ref: "refs/heads/x", Version: 3}})
	require.Empty(t, k.list(t0.Add(parkAfter)))
	k.fail("p", v, errString("x"), t0)
	k.fail("p", Version{Ref: "refs/heads/y"}, errString("y"), t0)
	k.keep("p", map[string]bool{"refs/heads/y": true})
	got = k.list(t0.Add(parkAfter))
	require.Len(t, got, 1)
	require.Equal(t, "refs/heads/y", got[0].Ref)
	require.NoError(t, parkedError(nil))
	k.fail("q", v, errString("q"), t0)
	k.retain(func(project string) bool { return project == "q" })
	got = k.list(t0.Add(parkAfter))
	require.Len(t, got, 1, "a project no longer placed here is forgotten")
	require.Equal(t, "q", got[0].Project)
}

type errString string

func (e errString) Error() string { return string(e) }

func TestPrepareDeadline(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		ms   int64
		want time.Duration
	}{
		{"ten seconds", 10_000, 10*time.Second + prepareGrace},
		{"none", 0, prepareGrace},
		{"two hours: bounded", 2 * 3600 * 1000, maxPrepareTimeout + prepareGrace},
		{"2^62: no overflow", 1 << 62, maxPrepareTimeout + prepareGrace},
		{"10^12", 1_000_000_000_000, maxPrepareTimeout + prepareGrace},
		{"negative", -5, maxPrepareTimeout + prepareGrace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, now.Add(tc.want), prepareDeadline(now, tc.ms))
		})
	}
}

// TestCheckReadRef: the read API reads full ref names under refs/ only;
// the error names the ref and what is wrong with it, and WaitRef refuses
// the same names before it touches a repository.
func TestCheckReadRef(t *testing.T) {
	for _, tc := range []struct {
		name string
		ref  string
		want string // "" when readable
	}{
		{"branch", "refs/heads/main", ""},
		{"change ref", "refs/changes/01/1/meta", ""},
		{"sitesync's own", "refs/sitesync/head", ""},
		{"HEAD", "HEAD", `ref "HEAD" is not a full ref name under refs/`},
		{"short name", "main", `ref "main" is not a full ref name under refs/`},
		{"ancestry", "main~2", `ref "main~2" is not a full ref name`},
		{"path in a tree", "main:f1", `ref "main:f1" is not a full ref name`},
		{"message search", ":/regex", `ref ":/regex" is not a full ref name`},
		{"path", "../../../../etc/passwd", `ref "../../../../etc/passwd" is not a full ref name`},
		{"ancestry of a full name", "refs/heads/main~2", `ref "refs/heads/main~2" contains a control character or one of`},
		{"peel", "refs/heads/main^{tree}", `ref "refs/heads/main^{tree}" contains a control character or one of`},
		{"reflog", "refs/heads/main@{1}", `contains '..', '//' or '@{'`},
		{"dot dot", "refs/../config", `contains '..'`},
		{"lock", "refs/heads/a.lock", "'.lock'"},
		{"empty", "", `ref "" is not a full ref name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckReadRef(tc.ref)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "refdb:")
			_, err = (&Coordinator{}).WaitRef(t.Context(), "p", tc.ref, "")
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

// TestWireTimeout: the timeout an origin sends is one every peer's check
// takes, whatever its rule says.
func TestWireTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    time.Duration
		want int64
	}{
		{"ten seconds", 10 * time.Second, 10_000},
		{"under a millisecond", 500 * time.Microsecond, 1},
		{"the bound", maxPrepareTimeout, maxPrepareTimeout.Milliseconds()},
		{"an hour: bounded", time.Hour, maxPrepareTimeout.Milliseconds()},
		{"the largest duration", time.Duration(1<<63 - 1), maxPrepareTimeout.Milliseconds()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := wireTimeout(tc.d)
			require.Equal(t, tc.want, got)
			require.NoError(t, checkTimeout(got))
		})
	}
}

func TestRetries(t *testing.T) {
	var r retries
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	require.True(t, r.due("t1", t0), "never tried: due")
	r.failed("t1", t0)
	require.False(t, r.due("t1", t0.Add(redeliverFirst-time.Millisecond)))
	require.True(t, r.due("t1", t0.Add(redeliverFirst)))
	r.failed("t1", t0)
	require.False(t, r.due("t1", t0.Add(2*redeliverFirst-time.Millisecond)), "the second failure waits twice as long")
	for range 20 {
		r.failed("t1", t0)
	}
	require.True(t, r.due("t1", t0.Add(redeliverMost)), "never longer than redeliverMost")
	require.True(t, r.due("t2", t0), "another entry is not held back")
	r.done("t1")
	require.True(t, r.due("t1", t0))
}
