package coord

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Outcome is where a tally stands.
type Outcome int

const (
	// Pending: the rule may still hold; wait for more votes.
	Pending Outcome = iota
	// Reached: enough sites hold the write; the decision may be taken.
	Reached
	// Failed: too many sites refused or are gone for the rule ever to hold.
	Failed
)

func (o Outcome) String() string {
	switch o {
	case Pending:
		return "pending"
	case Reached:
		return "reached"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Tally counts the votes of one transaction. Origin's own vote counts like
// any other: the origin holds the write once its objects are durable.
type Tally struct {
	need   int             // sites that must vote yes, origin included
	sites  []string        // placement sites, sorted
	yes    map[string]bool // sites that voted yes
	no     map[string]string
	sealed bool
}

// NewTally starts counting for a write that needs `need` of the placement
// sites (origin included). need is clamped to [1, len(sites)]: async needs
// only the origin, sync needs every site.
func NewTally(sites []string, need int) *Tally {
	s := slices.Clone(sites)
	sort.Strings(s)
	s = slices.Compact(s)
	need = max(1, min(need, len(s)))
	return &Tally{need: need, sites: s, yes: map[string]bool{}, no: map[string]string{}}
}

// Yes records that site holds the write durably.
func (t *Tally) Yes(site string) Outcome {
	if t.known(site) && !t.decided(site) {
		t.yes[site] = true
	}
	return t.Outcome()
}

// No records that site refused, with its reason, or is unreachable.
func (t *Tally) No(site, reason string) Outcome {
	if t.known(site) && !t.decided(site) {
		t.no[site] = reason
	}
	return t.Outcome()
}

// Outcome says whether the rule holds, cannot hold, or is still open.
func (t *Tally) Outcome() Outcome {
	switch {
	case len(t.yes) >= t.need:
		return Reached
	case len(t.sites)-len(t.no) < t.need:
		return Failed
	}
	return Pending
}

// Acks lists the sites that voted yes, sorted.
func (t *Tally) Acks() []string {
	out := make([]string, 0, len(t.yes))
	for s := range t.yes {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Need is how many yes votes the rule wants.
func (t *Tally) Need() int { return t.need }

// Summary says, for a git user, how far the tally got:
// "1 of 2 required sites answered" plus the reasons of the sites that refused.
func (t *Tally) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d required sites answered", len(t.yes), t.need)
	if len(t.no) > 0 {
		names := make([]string, 0, len(t.no))
		for s := range t.no {
			names = append(names, s)
		}
		sort.Strings(names)
		for i, s := range names {
			sep := "; "
			if i > 0 {
				sep = ", "
			}
			fmt.Fprintf(&b, "%ssite %s: %s", sep, s, t.no[s])
		}
	}
	return b.String()
}

func (t *Tally) known(site string) bool {
	_, ok := slices.BinarySearch(t.sites, site)
	return ok
}

// decided: a site's first vote stands; a late contradiction is ignored.
func (t *Tally) decided(site string) bool {
	_, no := t.no[site]
	return t.yes[site] || no
}
