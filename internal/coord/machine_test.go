package coord

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// event is one input of an originTxn in a table test.
type event struct {
	start   bool
	vote    string // site
	msg     voteMsg
	timeout bool
	decided bool
	err     error
}

func (e event) apply(t *originTxn) originStep {
	switch {
	case e.start:
		return t.Start()
	case e.vote != "":
		return t.Vote(e.vote, e.msg)
	case e.timeout:
		return t.Timeout()
	default:
		return t.Decided(e.err)
	}
}

var (
	start   = event{start: true}
	yes     = func(s string) event { return event{vote: s, msg: voteMsg{Vote: voteYes}} }
	no      = func(s, why string) event { return event{vote: s, msg: voteMsg{Vote: voteNo, Reason: why}} }
	missing = func(s string) event {
		return event{vote: s, msg: voteMsg{Vote: voteMissing, Reason: "2 objects missing"}}
	}
	timeout    = event{timeout: true}
	casOK      = event{decided: true}
	casFailed  = func(err error) event { return event{decided: true, err: err} }
	errRefdbUp = errors.New("refdb unavailable: etcdserver: request timed out")
)

func TestOriginTxn(t *testing.T) {
	three := []string{"a", "b", "c"}
	peers := []string{"b", "c"}
	conflict := &ConflictError{Project: "p"}
	for _, tc := range []struct {
		name   string
		policy Policy
		events []event
		want   []originStep // one per event
	}{
		{name: "async decides at once", policy: Policy{Mode: Async, Acks: 1, Sites: three},
			events: []event{start, casOK},
			want:   []originStep{{Decide: true}, {Queue: peers, Acks: []string{"a"}, Done: true}}},
		{name: "async conflict", policy: Policy{Mode: Async, Acks: 1, Sites: three},
			events: []event{start, casFailed(conflict)},
			want:   []originStep{{Decide: true}, {Abort: peers, Done: true, Err: conflict}}},
		{name: "quorum: one yes is enough", policy: Policy{Mode: Quorum, Acks: 2, Sites: three},
			events: []event{start, yes("c"), yes("b"), casOK},
			want: []originStep{{Prepare: peers}, {Decide: true}, {},
				{Queue: peers, Acks: []string{"a", "c"}, Done: true}}},
		{name: "quorum: a no, then a yes", policy: Policy{Mode: Quorum, Acks: 2, Sites: three},
			events: []event{start, no("b", "disk full"), yes("c"), casOK},
			want: []originStep{{Prepare: peers}, {}, {Decide: true},
				{Queue: peers, Acks: []string{"a", "c"}, Done: true}}},
		{name: "quorum: a missing vote is a no", policy: Policy{Mode: Quorum, Acks: 2, Sites: three},
			events: []event{start, missing("b"), no("c", "unreachable")},
			want: []originStep{{Prepare: peers}, {},
				{Abort: peers, Done: true, Err: &QuorumError{Summary: "1 of 2 required sites answered; site b: 2 objects missing, site c: unreachable"}}}},
		{name: "quorum: timeout names who did not answer", policy: Policy{Mode: Quorum, Acks: 2, Sites: three, Timeout: time.Second},
			events: []event{start, no("b", "disk full"), timeout, yes("c")},
			want: []originStep{{Prepare: peers}, {},
				{Abort: peers, Done: true, Err: &QuorumError{Summary: "1 of 2 required sites answered; site b: disk full, site c: no answer", Timeout: time.Second}},
				{}}},
		{name: "sync: every site", policy: Policy{Mode: Sync, Acks: 3, Sites: three},
			events: []event{start, yes("b"), timeout},
			want: []originStep{{Prepare: peers}, {},
				{Abort: peers, Done: true, Err: &QuorumError{Summary: "2 of 3 required sites answered; site c: no answer"}}}},
		{name: "sync: refused at the first no", policy: Policy{Mode: Sync, Acks: 3, Sites: three},
			events: []event{start, no("c", "unreachable: peer unavailable")},
			want: []originStep{{Prepare: peers},
				{Abort: peers, Done: true, Err: &QuorumError{Summary: "1 of 3 required sites answered; site c: unreachable: peer unavailable"}}}},
		{name: "refdb unavailable after the quorum", policy: Policy{Mode: Quorum, Acks: 2, Sites: three},
			events: []event{start, yes("b"), casFailed(errRefdbUp), yes("c"), timeout},
			want:   []originStep{{Prepare: peers}, {Decide: true}, {Abort: peers, Done: true, Err: errRefdbUp}, {}, {}}},
		{name: "a single site", policy: Policy{Mode: Sync, Acks: 3, Sites: []string{"a"}},
			events: []event{start, casOK},
			want:   []originStep{{Decide: true}, {Acks: []string{"a"}, Done: true}}},
		{name: "a vote of a site not in the placement", policy: Policy{Mode: Quorum, Acks: 2, Sites: three},
			events: []event{start, yes("z"), yes("b"), casOK},
			want:   []originStep{{Prepare: peers}, {}, {Decide: true}, {Queue: peers, Acks: []string{"a", "b"}, Done: true}}},
		{name: "a decision before any vote is ignored", policy: Policy{Mode: Quorum, Acks: 2, Sites: three},
			events: []event{start, casOK, yes("b"), casOK},
			want:   []originStep{{Prepare: peers}, {}, {Decide: true}, {Queue: peers, Acks: []string{"a", "b"}, Done: true}}},
		{name: "started twice", policy: Policy{Mode: Async, Acks: 1, Sites: three},
			events: []event{start, start, casOK},
			want:   []originStep{{Decide: true}, {}, {Queue: peers, Acks: []string{"a"}, Done: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newOriginTxn("a", tc.policy, peers)
			if len(tc.policy.Sites) == 1 {
				m = newOriginTxn("a", tc.policy, nil)
			}
			require.Len(t, tc.want, len(tc.events))
			for i, ev := range tc.events {
				got := ev.apply(m)
				want := tc.want[i]
				if want.Err != nil {
					require.Error(t, got.Err, "event %d", i)
					require.Equal(t, want.Err.Error(), got.Err.Error(), "event %d", i)
					if errors.Is(want.Err, ErrNoQuorum) {
						require.ErrorIs(t, got.Err, ErrNoQuorum)
					}
					got.Err, want.Err = nil, nil
				}
				if len(tc.policy.Sites) == 1 {
					want.Queue = nil
				}
				require.Equal(t, want, got, "event %d", i)
			}
		})
	}
}
