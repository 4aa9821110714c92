package coord

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTally(t *testing.T) {
	abc := []string{"a", "b", "c"}
	type vote struct {
		site string
		yes  bool
	}
	tests := []struct {
		name    string
		sites   []string
		need    int
		votes   []vote
		want    []Outcome // after each vote
		acks    []string
		summary string
	}{
		{name: "async: origin alone", sites: abc, need: 1, votes: []vote{{"a", true}}, want: []Outcome{Reached}, acks: []string{"a"}},
		{name: "quorum 2 of 3", sites: abc, need: 2, votes: []vote{{"a", true}, {"c", true}}, want: []Outcome{Pending, Reached}, acks: []string{"a", "c"}},
		{name: "quorum with one site down", sites: abc, need: 2, votes: []vote{{"a", true}, {"c", false}, {"b", true}}, want: []Outcome{Pending, Pending, Reached}, acks: []string{"a", "b"}},
		{name: "quorum impossible", sites: abc, need: 2, votes: []vote{{"a", true}, {"b", false}, {"c", false}}, want: []Outcome{Pending, Pending, Failed},
			summary: "1 of 2 required sites answered; site b: down, site c: down"},
		{name: "sync fails on first refusal", sites: abc, need: 3, votes: []vote{{"a", true}, {"b", false}}, want: []Outcome{Pending, Failed}},
		{name: "sync all", sites: abc, need: 3, votes: []vote{{"b", true}, {"a", true}, {"c", true}}, want: []Outcome{Pending, Pending, Reached}},
		{name: "need clamped to placement", sites: []string{"b"}, need: 3, votes: []vote{{"b", true}}, want: []Outcome{Reached}},
		{name: "unknown site ignored", sites: abc, need: 2, votes: []vote{{"a", true}, {"z", true}}, want: []Outcome{Pending, Pending}},
		{name: "duplicate yes counts once", sites: abc, need: 2, votes: []vote{{"a", true}, {"a", true}}, want: []Outcome{Pending, Pending}},
		{name: "first vote stands", sites: abc, need: 2, votes: []vote{{"b", false}, {"b", true}, {"a", true}}, want: []Outcome{Pending, Pending, Pending},
			summary: "1 of 2 required sites answered; site b: down"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl := NewTally(tc.sites, tc.need)
			for i, v := range tc.votes {
				var got Outcome
				if v.yes {
					got = tl.Yes(v.site)
				} else {
					got = tl.No(v.site, "down")
				}
				require.Equal(t, tc.want[i], got, "after vote %d (%s)", i, v.site)
			}
			if tc.acks != nil {
				require.Equal(t, tc.acks, tl.Acks())
			}
			if tc.summary != "" {
				require.Equal(t, tc.summary, tl.Summary())
			}
		})
	}
}
