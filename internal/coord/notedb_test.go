package coord

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/journal"
	"github.com/sitesync/sitesync/notedbfast"
)

func validDeltaMsgs(tb testing.TB) []deltaMsg {
	tb.Helper()
	seq := notedbfast.Hash(notedbfast.Blob, []byte("7\n"))
	frame, err := notedbfast.Encode(notedbfast.Delta{Project: "p", Txn: "a-1-w", Objects: []notedbfast.Object{
		{Type: notedbfast.Blob, ID: seq, Data: []byte("7\n")},
	}, Updates: []notedbfast.Update{{Ref: "refs/sequences/changes", Old: zero, New: seq}}})
	require.NoError(tb, err)
	g := "eu-west-19a2b3c4d5e-0123456789abcdev" // as txn.New makes them
	// A frame compressed against the previous sequence blob, which only a
	// reader holding it decodes.
	prev := notedbfast.Object{Type: notedbfast.Blob, ID: notedbfast.Hash(notedbfast.Blob, []byte("6\n")), Data: []byte("6\n")}
	codec, err := notedbfast.NewCodec(notedbfast.Dictionary(), nil)
	require.NoError(tb, err)
	based, err := codec.EncodeBased([]notedbfast.Object{prev}, notedbfast.Delta{Project: "p", Txn: "a-1-w", Objects: []notedbfast.Object{
		{Type: notedbfast.Blob, ID: seq, Data: []byte("7\n")},
	}, Updates: []notedbfast.Update{{Ref: "refs/sequences/changes", Old: prev.ID, New: seq}}})
	require.NoError(tb, err)
	return []deltaMsg{
		{Header: deltaHeader{Txn: "a-1-x", Project: "p", TimeoutMS: 10000}, Frame: frame},
		{Header: deltaHeader{Txn: "a-1-x", Project: "p", TimeoutMS: 10000, Pack: true}, Frame: frame},
		{Header: deltaHeader{Txn: "a-1-x", Project: "p", Versions: []Version{{Ref: "refs/sequences/changes", Value: one, Version: 2}}}},
		{Header: deltaHeader{Txn: "a-1-x", Project: "p", Versions: []Version{{Ref: "refs/sequences/changes", Value: one, Version: 2}}}, Frame: frame},
		{Header: deltaHeader{Txn: "a-1-x", Project: "tango/core"}},
		{Header: deltaHeader{Txn: g, Project: "q", TimeoutMS: 10000}, Frame: frame}, // project spelled out: not the frame's
		{Header: deltaHeader{Txn: g, Project: "p", Versions: []Version{
			{Ref: "refs/sequences/changes", Value: seq, Version: 9, Site: "eu-west"},
			{Ref: "refs/changes/45/12345/meta", Value: two, Version: 1 << 40, Site: "us-east"},
		}}, Frame: frame},
		{Header: deltaHeader{Txn: g, Project: "p", Versions: []Version{{Ref: "refs/changes/45/12345/meta", Value: two, Version: 3, Site: "eu-west"}}}},
		{Header: deltaHeader{Txn: g, Project: "p", Seq: 1 << 33, Versions: []Version{{Ref: "refs/sequences/changes", Value: seq, Version: 9, Site: "eu-west"}}}, Frame: frame},
		{Header: deltaHeader{From: "eu-west", Txn: g, Project: "p", Seq: 3, Versions: []Version{{Ref: "refs/sequences/changes", Value: seq, Version: 9, Site: "eu-west"}}}, Frame: frame},
		{Header: deltaHeader{From: "us-east", Txn: g, Project: "p", TimeoutMS: 1}, Frame: frame}, // another site's txn
		// Versions named in the peer's prepared entry, one spelled out.
		{Header: deltaHeader{From: "eu-west", Txn: g, Seq: 5, Entry: 3, Versions: []Version{{Version: 9, Site: "eu-west"}, {Version: 3}}, Named: []int{2, 0}}},
		{Header: deltaHeader{Txn: "a-1-x", Entry: 1, Versions: []Version{{Ref: "refs/heads/main", Value: two, Version: 1, Site: "c"}, {Version: 1 << 40}}, Named: []int{-1, 0}}},
		// A based frame: to prepare, and to commit with versions named in it.
		{Header: deltaHeader{Txn: g, Project: "p", TimeoutMS: 10000}, Frame: based},
		{Header: deltaHeader{From: "eu-west", Txn: g, Project: "p", Seq: 7, Versions: []Version{{Version: 9, Site: "eu-west"}, {Ref: "refs/x", Value: one, Version: 2}}, Named: []int{0, -1}}, Frame: based},
	}
}

func TestDeltaResolve(t *testing.T) {
	ups := []Update{{Ref: "refs/a", Old: zero, New: one}, {Ref: "refs/b", Old: one, New: two}}
	for _, tc := range []struct {
		name string
		h    deltaHeader
		want []Version
		err  string
	}{
		{"named", deltaHeader{Versions: []Version{{Version: 4}, {Version: 5, Site: "b"}}, Named: []int{1, 0}},
			[]Version{{Ref: "refs/b", Value: two, Version: 4}, {Ref: "refs/a", Value: one, Version: 5, Site: "b"}}, ""},
		{"spelled", deltaHeader{Versions: []Version{{Ref: "refs/c", Value: two, Version: 1}, {Version: 2}}, Named: []int{-1, 0}},
			[]Version{{Ref: "refs/c", Value: two, Version: 1}, {Ref: "refs/a", Value: one, Version: 2}}, ""},
		{"past the updates", deltaHeader{Versions: []Version{{Version: 1}}, Named: []int{2}}, nil, "update 2 of 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.h.resolve(ups)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, tc.h.Versions)
			require.Nil(t, tc.h.Named)
		})
	}
}

func TestNameVersions(t *testing.T) {
	ups := []Update{{Ref: "refs/a", Old: zero, New: one}, {Ref: "refs/b", Old: zero, New: one}, {Ref: "refs/a", Old: one, New: two}}
	require.Equal(t, []int{2, 1}, nameVersions([]Version{{Ref: "refs/a", Value: two}, {Ref: "refs/b", Value: one}}, ups))
	require.Equal(t, []int{0}, nameVersions([]Version{{Ref: "refs/a", Value: one}}, ups))
	require.Nil(t, nameVersions([]Version{{Ref: "refs/c", Value: one}}, ups), "a version that no update gives")
}

// mustEncodeDelta is encodeDelta of a message whose versions are valid.
func mustEncodeDelta(tb testing.TB, m deltaMsg) []byte {
	tb.Helper()
	b, err := encodeDelta(m)
	require.NoError(tb, err)
	return b
}

func TestDeltaWireRoundTrip(t *testing.T) {
	for _, m := range validDeltaMsgs(t) {
		got, err := decodeDelta(mustEncodeDelta(t, m), m.Header.From)
		require.NoError(t, err)
		require.Equal(t, m, got)
	}
	// A value that is not an object id is refused, not sent as the zero id
	// (which a peer would apply as a deletion).
	_, err := encodeDelta(deltaMsg{Header: deltaHeader{From: "eu-west", Txn: "eu-west-1", Project: "p",
		Versions: []Version{{Ref: "refs/changes/01/1/meta", Value: "not an id", Version: 3}}}})
	require.ErrorContains(t, err, `"not an id" is not an object id`)
}

func TestDeltaWireRejects(t *testing.T) {
	for _, tc := range deltaRejects(t) {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeDelta(tc.in, tc.from)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDeltaVotesRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"bad vote", `{"votes":[{"txn":"a","vote":"maybe"}]}`, "unknown vote"},
		{"bad txn", `{"votes":[{"txn":"","vote":"yes"}]}`, "invalid transaction id"},
		{"bad missing id", `{"votes":[{"txn":"a","vote":"missing","missing":["HEAD"]}]}`, "invalid object id"},
		{"bad have", `{"votes":[{"txn":"a","vote":"missing","haves":["` + strings.Repeat("g", 40) + `"]}]}`, "invalid object id"},
		{"bad missing base", `{"votes":[],"missing_bases":["HEAD"]}`, "invalid object id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m deltaVotesMsg
			err := decode([]byte(tc.in), &m, (*deltaVotesMsg).check)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzDecodeDelta feeds hostile bytes to the delta envelope decoder and the
// frame decoder behind it: each refuses with an error or yields a message
// that survives a round trip unchanged.
func FuzzDecodeDelta(f *testing.F) {
	const from = "eu-west"
	for _, m := range validDeltaMsgs(f) {
		m.Header.From = from
		f.Add(mustEncodeDelta(f, m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeDelta(b, from)
		if err != nil {
			return
		}
		again, err := decodeDelta(mustEncodeDelta(t, m), from)
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", m.Header, err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed %+v → %+v", m.Header, again.Header)
		}
		if len(m.Frame) > 0 {
			_, _ = notedbfast.Decode(m.Frame, notedbfast.Limits{MaxBytes: 1 << 20})
		}
	})
}

func TestDisjointRuns(t *testing.T) {
	w := func(refs ...string) *ndWrite {
		var ups []Update
		for _, r := range refs {
			ups = append(ups, Update{Ref: r, Old: zero, New: one})
		}
		return &ndWrite{w: &write{updates: ups}}
	}
	for _, tc := range []struct {
		name  string
		batch []*ndWrite
		cands []int
		want  [][]int
	}{
		{"one", []*ndWrite{w("refs/a")}, []int{0}, [][]int{{0}}},
		{"disjoint", []*ndWrite{w("refs/a"), w("refs/b"), w("refs/c", "refs/d")}, []int{0, 1, 2}, [][]int{{0, 1, 2}}},
		{"same ref twice", []*ndWrite{w("refs/a"), w("refs/b"), w("refs/a"), w("refs/c")}, []int{0, 1, 2, 3}, [][]int{{0, 1}, {2, 3}}},
		{"skips failed", []*ndWrite{w("refs/a"), w("refs/a"), w("refs/a")}, []int{0, 2}, [][]int{{0}, {2}}},
		{"overlap in a multi-ref write", []*ndWrite{w("refs/a", "refs/b"), w("refs/b", "refs/c"), w("refs/d")}, []int{0, 1, 2}, [][]int{{0}, {1, 2}}},
		{"none", []*ndWrite{w("refs/a")}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, disjointRuns(tc.batch, tc.cands))
		})
	}
}

func TestLatest(t *testing.T) {
	got := latest([]Version{{Ref: "refs/a", Value: one, Version: 1}, {Ref: "refs/b", Value: one, Version: 5}, {Ref: "refs/a", Value: two, Version: 2}})
	require.Equal(t, []Version{{Ref: "refs/a", Value: two, Version: 2}, {Ref: "refs/b", Value: one, Version: 5}}, got)
}

// TestFromEntry: a COMMIT-DELTA whose versions name the updates of the
// batch's prepared entry resolves them, and its project, from the entry;
// without the entry (or with another one) it is refused with errNoEntry,
// and the origin spells the versions out.
func TestFromEntry(t *testing.T) {
	j, err := journal.Open(t.TempDir())
	require.NoError(t, err)
	c := &Coordinator{prepared: j}
	const g = "eu-west-19a2b3c4d5e-0123456789abcdev"
	require.NoError(t, j.PutVolatile(journal.Entry{Txn: g, Project: "tango/core", Origin: "eu-west", Updates: []journal.Update{
		{Ref: "refs/changes/01/1/meta", Old: zero, New: one}, {Ref: "refs/changes/02/2/meta", Old: one, New: two},
	}}))
	for _, tc := range []struct {
		name, txn, from string
		entry           int
		named           []int
		want            []Version
		err             string
	}{
		{"both", g, "eu-west", 2, []int{1, 0}, []Version{{Ref: "refs/changes/02/2/meta", Value: two, Version: 1}, {Ref: "refs/changes/01/1/meta", Value: one, Version: 2}}, ""},
		{"absent", "eu-west-19a2b3c4d5e-0123456789abcdeu", "eu-west", 2, []int{0, 0}, nil, "no prepared entry"},
		{"other origin", g, "us-east", 2, []int{0, 0}, nil, "no prepared entry"},
		{"other size", g, "eu-west", 3, []int{0, 0}, nil, "no prepared entry"},
		{"past the updates", g, "eu-west", 2, []int{0, 2}, nil, "update 2 of 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := deltaHeader{Txn: tc.txn, Entry: tc.entry, Versions: []Version{{Version: 1}, {Version: 2}}, Named: tc.named}
			err := c.fromEntry(tc.from, &h)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "tango/core", h.Project)
			require.Equal(t, tc.want, h.Versions)
			require.NoError(t, h.check())
		})
	}
}
