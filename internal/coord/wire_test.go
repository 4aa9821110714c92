package coord

import (
	"reflect"
	"strings"
	"testing"
)

var (
	zero = strings.Repeat("0", 40)
	one  = strings.Repeat("1", 40)
	two  = strings.Repeat("2", 40)
)

func validMessages() []any {
	return []any{
		&prepareMsg{Txn: "a-1-x", Project: "tango/core", Updates: []Update{{Ref: "refs/heads/main", Old: one, New: two}, {Ref: "refs/tags/v1", Old: zero, New: one}}, Pack: true, TimeoutMS: 10000},
		&voteMsg{Vote: voteMissing, Reason: "3 objects missing"},
		&commitMsg{Txn: "a-1-x", Project: "p", Versions: []Version{{Ref: "refs/heads/main", Value: two, Version: 7}}},
		&abortMsg{Txn: "a-1-x", Project: "p"},
		&fetchMsg{Project: "p", Txn: "b-2-y", Wants: []string{one}, Haves: []string{two}},
		&createMsg{Project: "a/b/c"},
		&projectsMsg{Projects: []string{"a", "b/c"}},
	}
}

// decodeAs decodes b as a message of the same type as like.
func decodeAs(like any, b []byte) (any, error) {
	switch like.(type) {
	case *prepareMsg:
		var m prepareMsg
		return &m, decode(b, &m, (*prepareMsg).check)
	case *voteMsg:
		var m voteMsg
		return &m, decode(b, &m, (*voteMsg).check)
	case *commitMsg:
		var m commitMsg
		return &m, decode(b, &m, (*commitMsg).check)
	case *abortMsg:
		var m abortMsg
		return &m, decode(b, &m, (*abortMsg).check)
	case *fetchMsg:
		var m fetchMsg
		return &m, decode(b, &m, (*fetchMsg).check)
	case *createMsg:
		var m createMsg
		return &m, decode(b, &m, (*createMsg).check)
	case *projectsMsg:
		var m projectsMsg
		return &m, decode(b, &m, (*projectsMsg).check)
	}
	panic("unknown message type")
}

func TestWireRoundTrip(t *testing.T) {
	for _, m := range validMessages() {
		got, err := decodeAs(m, encode(m))
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%T round trip: got %+v want %+v", m, got, m)
		}
	}
}

func TestWireRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		like any
		in   string
		want string
	}{
		{"unknown field", &abortMsg{}, `{"txn":"a","project":"p","x":1}`, "unknown field"},
		{"trailing data", &abortMsg{}, `{"txn":"a","project":"p"} {}`, "trailing data"},
		{"path escape", &createMsg{}, `{"project":"../etc"}`, "project"},
		{"bad txn", &abortMsg{}, `{"txn":"../x","project":"p"}`, "invalid transaction id"},
		{"bad ref", &prepareMsg{}, `{"txn":"a","project":"p","updates":[{"ref":"refs/heads/a b","old":"` + zero + `","new":"` + one + `"}],"timeout_ms":1}`, "ref"},
		{"ref twice", &prepareMsg{}, `{"txn":"a","project":"p","updates":[{"ref":"refs/x","old":"` + zero + `","new":"` + one + `"},{"ref":"refs/x","old":"` + zero + `","new":"` + one + `"}],"timeout_ms":1}`, "appears twice"},
		{"short sha", &commitMsg{}, `{"txn":"a","project":"p","versions":[{"ref":"refs/x","value":"abc","version":1}]}`, "40 hex"},
		{"bad vote", &voteMsg{}, `{"vote":"maybe"}`, "unknown vote"},
		{"bad want", &fetchMsg{}, `{"project":"p","txn":"a","wants":["HEAD"]}`, "invalid object id"},
		{"negative timeout", &prepareMsg{}, `{"txn":"a","project":"p","updates":[],"timeout_ms":-1}`, "negative timeout"},
		{"not json", &voteMsg{}, "\x00\x01", "malformed message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeAs(tc.like, []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzDecode feeds hostile bytes to every decoder of peer messages: each
// either refuses with an error or yields a message that survives a round
// trip unchanged.
func FuzzDecode(f *testing.F) {
	msgs := validMessages()
	for i, m := range msgs {
		f.Add(uint8(i), encode(m))
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		like := msgs[int(kind)%len(msgs)]
		m, err := decodeAs(like, b)
		if err != nil {
			return
		}
		again, err := decodeAs(like, encode(m))
		if err != nil {
			t.Fatalf("re-decoding %T %+v: %v", m, m, err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed %T: %+v → %+v", m, m, again)
		}
	})
}
