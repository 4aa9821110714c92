package coord

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

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
	}
}

func TestDeltaWireRoundTrip(t *testing.T) {
	for _, m := range validDeltaMsgs(t) {
		got, err := decodeDelta(encodeDelta(m))
		require.NoError(t, err)
		require.Equal(t, m, got)
	}
}

func TestDeltaWireRejects(t *testing.T) {
	for _, tc := range deltaRejects(t) {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeDelta(tc.in)
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
	for _, m := range validDeltaMsgs(f) {
		f.Add(encodeDelta(m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeDelta(b)
		if err != nil {
			return
		}
		again, err := decodeDelta(encodeDelta(m))
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
