package shard

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sitesync/sitesync/internal/glob"
)

// Rule is one shard.projects entry: projects matching Match (a glob of
// internal/glob) are held by Sites only.
type Rule struct {
	Match string
	Sites []string
}

// Map answers where a project lives. The zero value is not usable; use NewMap.
type Map struct {
	sites []string
	rules []Rule
	pats  []*glob.Pattern
}

// NewMap builds the placement of rules over sites (every site, in
// configuration order). A rule must name at least one site, only known sites,
// each once; its pattern must compile. The error names the first bad rule.
func NewMap(sites []string, rules []Rule) (*Map, error) {
	if len(sites) == 0 {
		return nil, errors.New("shard: no sites")
	}
	known := map[string]bool{}
	for _, s := range sites {
		if s == "" || known[s] {
			return nil, fmt.Errorf("shard: bad or duplicate site %q", s)
		}
		known[s] = true
	}
	m := &Map{sites: slices.Clone(sites)}
	for i, r := range rules {
		p, err := glob.Compile(r.Match)
		if err != nil {
			return nil, fmt.Errorf("shard rule %d: %w", i, err)
		}
		if len(r.Sites) == 0 {
			return nil, fmt.Errorf("shard rule %d (%q): no sites", i, r.Match)
		}
		seen := map[string]bool{}
		for _, s := range r.Sites {
			if !known[s] || seen[s] {
				return nil, fmt.Errorf("shard rule %d (%q): unknown or duplicate site %q", i, r.Match, s)
			}
			seen[s] = true
		}
		m.rules = append(m.rules, Rule{Match: r.Match, Sites: slices.Clone(r.Sites)})
		m.pats = append(m.pats, p)
	}
	return m, nil
}

// Sites returns every site in configuration order. The slice is the caller's.
func (m *Map) Sites() []string { return slices.Clone(m.sites) }

// Rules returns the rules in order. The slices are the caller's.
func (m *Map) Rules() []Rule {
	out := make([]Rule, len(m.rules))
	for i, r := range m.rules {
		out[i] = Rule{Match: r.Match, Sites: slices.Clone(r.Sites)}
	}
	return out
}

// RuleOf returns the index of the rule that places project, or -1 when the
// project is global.
func (m *Map) RuleOf(project string) int { return glob.FirstMatch(m.pats, project) }

// Placement returns the sites that hold project: the first matching rule's
// sites in the rule's order, or every site for a global project. The slice is
// the caller's.
func (m *Map) Placement(project string) []string { return slices.Clone(m.placement(project)) }

func (m *Map) placement(project string) []string {
	if i := m.RuleOf(project); i >= 0 {
		return m.rules[i].Sites
	}
	return m.sites
}

// Holds reports whether site holds project.
func (m *Map) Holds(site, project string) bool {
	return slices.Contains(m.placement(project), site)
}

// RTT reports the measured round-trip time to a site; ok is false when it is
// not known (no connection yet, or no measurement).
type RTT func(site string) (rtt time.Duration, ok bool)

// Nearest returns the site of sites with the smallest known RTT. Sites whose
// RTT is unknown come after every measured one; ties, and a nil rtt, keep the
// order of sites. It returns "" for no sites.
func Nearest(sites []string, rtt RTT) string {
	best, bestRTT, bestKnown := "", time.Duration(0), false
	for _, s := range sites {
		var d time.Duration
		known := false
		if rtt != nil {
			d, known = rtt(s)
		}
		switch {
		case best == "":
		case known && (!bestKnown || d < bestRTT):
		default:
			continue
		}
		best, bestRTT, bestKnown = s, d, known
	}
	return best
}

// Route decides what the front door of site self does with a request for
// project: serve it locally (redirect false) when self holds the project, or
// redirect to the nearest site that holds it.
func Route(m *Map, self, project string, rtt RTT) (site string, redirect bool) {
	placement := m.placement(project)
	if slices.Contains(placement, self) {
		return "", false
	}
	return Nearest(placement, rtt), true
}
