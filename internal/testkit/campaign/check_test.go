package campaign

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/refdb"
)

// Object names for the fabricated histories: A, B, C, D are 40 hex digits.
var (
	A = strings.Repeat("a", 40)
	B = strings.Repeat("b", 40)
	C = strings.Repeat("c", 40)
	D = strings.Repeat("d", 40)
)

// t0 is the fabricated run's start; at(n) is n seconds after it.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func at(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Second))) }

// hist builds a ref's history from (value, seconds) pairs: version i+1 is
// the i-th pair, written by site a with transaction "t<i+1>".
func hist(ref string, pairs ...any) []Rec {
	var recs []Rec
	for i := 0; i < len(pairs); i += 2 {
		n := len(recs) + 1
		recs = append(recs, Rec{Rev: int64(10 * n), Record: refdb.Record{
			Ref: ref, Value: pairs[i].(string), Version: uint64(n), Site: "a",
			Txn: fmt.Sprintf("t%d", n), Time: at(pairs[i+1].(float64)),
		}})
	}
	return recs
}

const main = "refs/heads/main"

// TestCheck: each invariant's violation, fabricated, is flagged with its
// kind; the lawful histories around them are not.
func TestCheck(t *testing.T) {
	good := History{main: hist(main, A, 1.0, B, 2.0, C, 3.0)}
	push := func(old, new string, start, end float64) Write {
		return Write{Op: "op 1", Via: "push", Site: "a", Ref: main, Old: old, New: new, Start: at(start), End: at(end)}
	}
	obs := func(site, value string, when float64) Observation {
		return Observation{Site: site, Ref: main, Value: value, At: at(when)}
	}
	refused := func(new string, start, end float64) Write {
		return Write{Op: "op 4", Via: "push", Site: "a", Ref: main, New: new, Start: at(start), End: at(end)}
	}
	tests := []struct {
		name     string
		required int
		history  History
		writes   []Write
		refusals []Write
		obs      []Observation
		want     []Kind // the kinds flagged, in Check's order
	}{
		{name: "lawful run", history: good,
			writes: []Write{push(ZeroSHA, A, 0.5, 1.5), push(A[:7], B, 1.5, 2.5), push("", C, 2.9, 3.1)},
			obs: []Observation{obs("b", A, 1.2), obs("b", B, 2.6), obs("c", A, 1.1), obs("c", C, 3.5),
				obs("b", C, 4)}},
		{name: "nothing at all"},

		// 1: acknowledged means in the refdb.
		{name: "acknowledged write not in the history", history: good,
			writes: []Write{push("", D, 2, 3)}, want: []Kind{Lost}},
		{name: "acknowledged value decided outside the request", history: good,
			writes: []Write{push("", B, 5, 6)}, want: []Kind{Lost}},
		{name: "API write whose txn wrote something else", history: good,
			writes: []Write{{Op: "op 2", Via: "api", Ref: main, Old: A, New: B, Txn: "t3", Acks: []string{"a", "b"}, Start: at(1), End: at(4)}},
			want:   []Kind{Lost}},
		{name: "API write of the right txn", history: good, required: 2,
			writes: []Write{{Op: "op 2", Via: "api", Ref: main, Old: A, New: B, Txn: "t2", Acks: []string{"a", "b"}, Start: at(1), End: at(4)}}},
		{name: "API write acknowledged by too few sites", history: good, required: 3,
			writes: []Write{{Op: "op 2", Via: "api", Ref: main, Old: A, New: B, Txn: "t2", Acks: []string{"a", "b"}, Start: at(1), End: at(4)}},
			want:   []Kind{AckRule}},
		{name: "acknowledged deletion is a tombstone", history: History{main: hist(main, A, 1.0, ZeroSHA, 2.0)},
			writes: []Write{{Op: "op 3", Via: "push", Ref: main, New: ZeroSHA, Start: at(1.5), End: at(2.5)}}},

		// Refused means not decided.
		{name: "refused write decided anyway", history: good,
			refusals: []Write{refused(B, 1.5, 2.5)}, want: []Kind{Landed}},
		{name: "refused value decided by another request", history: good,
			refusals: []Write{refused(B, 2.5, 3.5)}},
		{name: "refused value decided at another site", history: good,
			refusals: []Write{{Op: "op 4", Via: "api", Site: "b", Ref: main, New: B, Start: at(1.5), End: at(2.5)}}},
		{name: "refused deletion of a ref never deleted", history: good,
			refusals: []Write{refused(ZeroSHA, 0, 5)}},

		// 2: unbroken CAS chains.
		{name: "version skipped", history: History{main: {
			{Rev: 1, Record: refdb.Record{Ref: main, Value: A, Version: 1, Time: at(1)}},
			{Rev: 2, Record: refdb.Record{Ref: main, Value: B, Version: 3, Time: at(2)}},
		}}, want: []Kind{Chain}},
		{name: "first version is not 1", history: History{main: {
			{Rev: 1, Record: refdb.Record{Ref: main, Value: A, Version: 2, Time: at(1)}},
		}}, want: []Kind{Chain}},
		{name: "write's old value is not the value before it", history: good,
			writes: []Write{push(C[:7], B, 1.5, 2.5)}, want: []Kind{Chain}},
		{name: "creation over an existing value", history: good,
			writes: []Write{push(ZeroSHA, B, 1.5, 2.5)}, want: []Kind{Chain}},
		{name: "two acknowledged fast-forwards from one base", history: good,
			writes: []Write{push(A[:7], B, 1.5, 2.5), push(A[:7], C, 2.5, 3.5)}, want: []Kind{Chain}},

		// 3: one history per ref.
		{name: "site exposes a value the refdb never held", history: good,
			obs: []Observation{obs("b", A, 1.5), obs("b", D, 2.5)}, want: []Kind{Foreign}},
		{name: "site exposes a ref the refdb never heard of", history: good,
			obs: []Observation{{Site: "c", Ref: "refs/heads/other", Value: A, At: at(2)}}, want: []Kind{Foreign}},
		{name: "site exposes a value before the refdb decided it", history: good,
			obs: []Observation{obs("b", C, 2.5)}, want: []Kind{Early}},
		{name: "absent before the first write is lawful", history: good,
			obs: []Observation{obs("b", A, 1.5), obs("b", B, 2.5)}},

		// 4: no regressions.
		{name: "site goes back a version", history: good,
			obs: []Observation{obs("b", B, 2.5), obs("b", A, 3.5)}, want: []Kind{Regression}},
		{name: "site loses a ref the refdb never deleted", history: good,
			obs: []Observation{obs("b", A, 1.5), obs("b", ZeroSHA, 1.6)}, want: []Kind{Regression}},
		{name: "a value held twice: back to it is forward", history: History{main: hist(main, A, 1.0, B, 2.0, A, 3.0)},
			obs: []Observation{obs("b", A, 1.5), obs("b", B, 2.5), obs("b", A, 3.5)}},
		{name: "deleted and created again", history: History{main: hist(main, A, 1.0, ZeroSHA, 2.0, B, 3.0)},
			obs: []Observation{obs("b", A, 1.5), obs("b", ZeroSHA, 2.5), obs("b", B, 3.5)}},
		{name: "one site's order says nothing of another's", history: good,
			obs: []Observation{obs("b", C, 3.5), obs("c", A, 3.6)}},

		// 5: objects before refs.
		{name: "site exposes a value without its object", history: good,
			obs: []Observation{{Site: "b", Ref: main, Value: B, At: at(2.5), Missing: true}}, want: []Kind{MissingObject}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(Input{Required: tt.required, History: tt.history, Writes: tt.writes, Refusals: tt.refusals, Observations: tt.obs})
			var kinds []Kind
			for _, v := range got {
				kinds = append(kinds, v.Kind)
				require.NotEmpty(t, v.Detail)
			}
			require.Equal(t, tt.want, kinds, "violations: %v", got)
		})
	}
}

// TestCheckDetail: a violation says where and what, in words a reader can
// act on.
func TestCheckDetail(t *testing.T) {
	got := Check(Input{
		History:      History{main: hist(main, A, 1.0, B, 2.0)},
		Observations: []Observation{{Site: "b", Ref: main, Value: B, At: at(2.5)}, {Site: "b", Ref: main, Value: A, At: at(3)}},
	})
	require.Len(t, got, 1)
	require.Equal(t, Regression, got[0].Kind)
	require.Equal(t, "b", got[0].Site)
	require.Equal(t, main, got[0].Ref)
	s := got[0].String()
	for _, want := range []string{"regression at b refs/heads/main", "bbbbbbbbbb", "aaaaaaaaaa", "v1=aaaaaaaaaa", "v2=bbbbbbbbbb"} {
		require.Contains(t, s, want)
	}
}

func TestConverged(t *testing.T) {
	recs := []refdb.Record{
		{Ref: main, Value: A, Version: 3},
		{Ref: "refs/heads/gone", Value: ZeroSHA, Version: 2}, // a tombstone
		{Ref: "HEAD", Value: B, Version: 1},                  // not under refs/
	}
	tests := []struct {
		name  string
		local map[string]string
		want  []string // refs flagged
	}{
		{name: "equal", local: map[string]string{main: A}},
		{name: "behind", local: map[string]string{main: B}, want: []string{main}},
		{name: "missing", local: map[string]string{}, want: []string{main}},
		{name: "deleted ref still there", local: map[string]string{main: A, "refs/heads/gone": C}, want: []string{"refs/heads/gone"}},
		{name: "ref the refdb never held", local: map[string]string{main: A, "refs/tags/x": C}, want: []string{"refs/tags/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var refs []string
			for _, v := range Converged("c", recs, tt.local) {
				require.Equal(t, Diverged, v.Kind)
				require.Equal(t, "c", v.Site)
				refs = append(refs, v.Ref)
			}
			require.Equal(t, tt.want, refs)
		})
	}
}

func TestHistoryCurrent(t *testing.T) {
	h := History{"refs/heads/z": hist("refs/heads/z", A, 1.0), main: hist(main, A, 1.0, B, 2.0)}
	cur := h.Current()
	require.Len(t, cur, 2)
	require.Equal(t, main, cur[0].Ref)
	require.Equal(t, B, cur[0].Value)
	require.Equal(t, uint64(2), cur[0].Version)
	require.Equal(t, "refs/heads/z", cur[1].Ref)
}
