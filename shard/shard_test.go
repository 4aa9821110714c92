package shard

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var sites = []string{"a", "b", "c", "d"}

func testMap(tb testing.TB) *Map {
	tb.Helper()
	m, err := NewMap(sites, []Rule{
		{Match: "tango/secret", Sites: []string{"c"}},
		{Match: "tango/*", Sites: []string{"b"}},
		{Match: "tango/**", Sites: []string{"b", "c"}},
		{Match: "eu/**", Sites: []string{"c", "b", "d"}},
		{Match: "*/core", Sites: []string{"a", "d"}},
	})
	require.NoError(tb, err)
	return m
}

func TestPlacement(t *testing.T) {
	m := testMap(t)
	tests := []struct {
		name    string
		project string
		rule    int
		want    []string
	}{
		{"literal rule first", "tango/secret", 0, []string{"c"}},
		{"first match wins over a later wider rule", "tango/x", 1, []string{"b"}},
		{"star stays in its segment", "tango/x/y", 2, []string{"b", "c"}},
		{"rule order kept in placement", "eu/app", 3, []string{"c", "b", "d"}},
		{"leading wildcard", "platform/core", 4, []string{"a", "d"}},
		{"earlier rule takes tango/core", "tango/core", 1, []string{"b"}},
		{"global: no rule matches", "platform/web", -1, sites},
		{"not below tango", "tango", -1, sites},
		{"prefix is not a segment", "tangox/y", -1, sites},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.rule, m.RuleOf(tt.project))
			assert.Equal(t, tt.want, m.Placement(tt.project))
			for _, s := range sites {
				assert.Equal(t, contains(tt.want, s), m.Holds(s, tt.project), "site %s", s)
			}
		})
	}
	p := m.Placement("tango/x")
	p[0] = "zz"
	assert.Equal(t, []string{"b"}, m.Placement("tango/x"), "callers own the slices they get")
}

func TestNewMapRefuses(t *testing.T) {
	tests := []struct {
		name  string
		sites []string
		rules []Rule
		want  string
	}{
		{"no sites", nil, nil, "no sites"},
		{"duplicate site", []string{"a", "a"}, nil, `duplicate site "a"`},
		{"bad pattern", sites, []Rule{{Match: "a/", Sites: []string{"a"}}}, `shard rule 0: bad pattern "a/"`},
		{"no rule sites", sites, []Rule{{Match: "x"}}, `shard rule 0 ("x"): no sites`},
		{"unknown site", sites, []Rule{{Match: "x", Sites: []string{"a"}}, {Match: "y", Sites: []string{"z"}}}, `shard rule 1 ("y"): unknown or duplicate site "z"`},
		{"site twice", sites, []Rule{{Match: "x", Sites: []string{"a", "a"}}}, `duplicate site "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMap(tt.sites, tt.rules)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// rtts is a measured RTT table; sites missing from it are unknown.
func rtts(ms map[string]float64) RTT {
	return func(site string) (time.Duration, bool) {
		v, ok := ms[site]
		return time.Duration(v * float64(time.Millisecond)), ok
	}
}

func TestNearest(t *testing.T) {
	tests := []struct {
		name  string
		sites []string
		rtt   RTT
		want  string
	}{
		{"smallest rtt", []string{"b", "c", "d"}, rtts(map[string]float64{"b": 80, "c": 3, "d": 40}), "c"},
		{"tie keeps order", []string{"b", "c", "d"}, rtts(map[string]float64{"b": 80, "c": 5, "d": 5}), "c"},
		{"tie keeps order, reversed", []string{"d", "c", "b"}, rtts(map[string]float64{"b": 80, "c": 5, "d": 5}), "d"},
		{"unknown sorts last", []string{"b", "c"}, rtts(map[string]float64{"c": 900}), "c"},
		{"unknown first in list still last", []string{"b", "c", "d"}, rtts(map[string]float64{"d": 1}), "d"},
		{"all unknown: list order", []string{"d", "b"}, rtts(nil), "d"},
		{"nil rtt: list order", []string{"c", "b"}, nil, "c"},
		{"zero rtt is measured", []string{"b", "c"}, rtts(map[string]float64{"b": 1, "c": 0}), "c"},
		{"no sites", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Nearest(tt.sites, tt.rtt))
		})
	}
}

func TestRoute(t *testing.T) {
	m := testMap(t)
	near := rtts(map[string]float64{"a": 0, "b": 90, "c": 12, "d": 12})
	tests := []struct {
		name     string
		self     string
		project  string
		rtt      RTT
		site     string
		redirect bool
	}{
		{"global project served anywhere", "a", "platform/web", near, "", false},
		{"global project at another site", "d", "platform/web", nil, "", false},
		{"placement site serves locally", "b", "tango/x", near, "", false},
		{"one placement site", "a", "tango/x", near, "b", true},
		{"nearest of several", "a", "tango/x/y", near, "c", true},
		{"nearest of several, unknown rtt last", "a", "tango/x/y", rtts(map[string]float64{"c": 200}), "c", true},
		{"tie: rule order", "a", "eu/app", near, "c", true},
		{"no rtts: rule order", "a", "eu/app", nil, "c", true},
		{"site in a multi-site placement serves", "d", "eu/app", near, "", false},
		{"first match wins", "c", "tango/core", near, "b", true},
		{"leading wildcard rule", "b", "x/core", rtts(map[string]float64{"a": 30, "d": 20}), "d", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site, redirect := Route(m, tt.self, tt.project, tt.rtt)
			assert.Equal(t, tt.redirect, redirect)
			assert.Equal(t, tt.site, site)
			if redirect {
				assert.True(t, m.Holds(site, tt.project), "a redirect goes to a site that holds the project")
				assert.False(t, m.Holds(tt.self, tt.project))
			}
		})
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
