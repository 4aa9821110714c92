package glob

import (
	"errors"
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		match   []string
		noMatch []string
	}{
		{name: "literal", pattern: "tango/core",
			match: []string{"tango/core"}, noMatch: []string{"tango", "tango/core2", "tango/core/x", "Tango/core"}},
		{name: "star within segment", pattern: "tango/*",
			match:   []string{"tango/core", "tango/x", "tango/"},
			noMatch: []string{"tango", "tango/core/sub", "tangox/core"}},
		{name: "star prefix", pattern: "All-*",
			match: []string{"All-Projects", "All-Users", "All-"}, noMatch: []string{"All", "all-Users", "All-Users/x"}},
		{name: "star middle", pattern: "a*b/c",
			match: []string{"ab/c", "axxb/c", "abb/c"}, noMatch: []string{"a/b/c", "ab/cd"}},
		{name: "two stars in a segment", pattern: "*-*",
			match: []string{"a-b", "-", "a-b-c"}, noMatch: []string{"ab", "a/-b"}},
		{name: "question mark", pattern: "p?",
			match: []string{"p1", "pé"}, noMatch: []string{"p", "p12", "p/"}},
		{name: "trailing globstar", pattern: "a/**",
			match: []string{"a/b", "a/b/c", "a/b/c/d"}, noMatch: []string{"a", "ab", "b/a/c"}},
		{name: "leading globstar", pattern: "**/meta",
			match: []string{"meta", "x/meta", "x/y/meta"}, noMatch: []string{"xmeta", "meta/x"}},
		{name: "middle globstar", pattern: "a/**/b",
			match: []string{"a/b", "a/x/b", "a/x/y/b"}, noMatch: []string{"ab", "a/xb", "a/b/c", "x/a/b"}},
		{name: "globstar alone", pattern: "**",
			match: []string{"a", "a/b/c", ""}},
		{name: "ref pattern", pattern: "refs/changes/*/*/meta",
			match:   []string{"refs/changes/45/12345/meta"},
			noMatch: []string{"refs/changes/45/12345/1", "refs/changes/45/meta", "refs/changes/4/5/6/meta"}},
		{name: "globstar then star", pattern: "**/*.git",
			match: []string{"x.git", "a/b/x.git"}, noMatch: []string{"a/x.gitx"}},
		{name: "dots are literal", pattern: "a.b",
			match: []string{"a.b"}, noMatch: []string{"axb"}},
		{name: "unicode literal", pattern: "café/*",
			match: []string{"café/x"}, noMatch: []string{"cafe/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.pattern)
			require.NoError(t, err)
			assert.Equal(t, tt.pattern, p.String())
			for _, n := range tt.match {
				assert.True(t, p.Match(n), "%q should match %q", tt.pattern, n)
				assert.Equal(t, refMatch(tt.pattern, n), true, "reference disagrees on %q", n)
			}
			for _, n := range tt.noMatch {
				assert.False(t, p.Match(n), "%q should not match %q", tt.pattern, n)
				assert.Equal(t, refMatch(tt.pattern, n), false, "reference disagrees on %q", n)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		reason  string
	}{
		{"empty", "", "empty pattern"},
		{"leading slash", "/tango/*", "must not start with '/'"},
		{"trailing slash", "tango/", "must not end with '/'"},
		{"empty segment", "a//b", "empty path segment"},
		{"globstar in segment", "a**", `"**" must be a whole path segment`},
		{"globstar suffix", "a/**b", `"**" must be a whole path segment`},
		{"triple star", "***", `"**" must be a whole path segment`},
		{"class", "a[bc]", "reserved"},
		{"brace", "{a,b}", "reserved"},
		{"escape", `a\*`, "reserved"},
		{"control", "a\x00b", "control character"},
		{"newline", "a\nb", "control character"},
		{"invalid utf8", "a\xffb", "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.pattern)
			require.Error(t, err)
			assert.Nil(t, p)
			var ge *Error
			require.True(t, errors.As(err, &ge))
			assert.Equal(t, tt.pattern, ge.Pattern)
			assert.Contains(t, err.Error(), tt.reason)
			assert.Contains(t, err.Error(), "bad pattern")
		})
	}
}

func TestFirstMatch(t *testing.T) {
	ps := []*Pattern{MustCompile("All-*"), MustCompile("tango/**"), MustCompile("**")}
	tests := []struct {
		name    string
		project string
		want    int
	}{
		{"first rule", "All-Users", 0},
		{"second rule", "tango/core/x", 1},
		{"catch all", "plugins/x", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, FirstMatch(ps, tt.project))
		})
	}
	assert.Equal(t, -1, FirstMatch(ps[:2], "plugins/x"))
	assert.Equal(t, -1, FirstMatch(nil, "x"))
}

func TestWitness(t *testing.T) {
	c := func(ps ...string) []*Pattern {
		var out []*Pattern
		for _, p := range ps {
			out = append(out, MustCompile(p))
		}
		return out
	}
	tests := []struct {
		name             string
		include, exclude []string
		want             string
		ok               bool
	}{
		{name: "anything", want: "x", ok: true},
		{name: "literal", include: []string{"tango/core"}, want: "tango/core", ok: true},
		{name: "star", include: []string{"tango/*"}, want: "tango/x", ok: true},
		{name: "intersection", include: []string{"tango/*", "*/core"}, want: "tango/core", ok: true},
		{name: "disjoint", include: []string{"tango/*", "foxtrot/*"}, ok: false},
		{name: "shadowed", include: []string{"tango/core"}, exclude: []string{"tango/*"}, ok: false},
		{name: "shadowed by globstar", include: []string{"a/b/c"}, exclude: []string{"a/**"}, ok: false},
		{name: "partly shadowed", include: []string{"tango/*"}, exclude: []string{"tango/x"}, want: "tango/y", ok: true},
		{name: "everything excluded", exclude: []string{"**"}, ok: false},
		{name: "not under prefix", exclude: []string{"x/**", "x"}, want: "y", ok: true},
		{name: "question", include: []string{"?"}, exclude: []string{"x"}, want: "y", ok: true},
		{name: "trailing globstar needs a segment", include: []string{"a/**"}, want: "a/x", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := Witness(c(tt.include...), c(tt.exclude...))
			require.NoError(t, err)
			require.Equal(t, tt.ok, ok, "witness %q", got)
			if !tt.ok {
				return
			}
			assert.Equal(t, tt.want, got)
			for _, p := range c(tt.include...) {
				assert.True(t, p.Match(got))
			}
			for _, p := range c(tt.exclude...) {
				assert.False(t, p.Match(got))
			}
		})
	}
}

// refMatch is an independent, obviously-correct (and exponential) matcher:
// segment by segment, with path.Match inside a segment. The fuzz target checks
// the NFA against it.
func refMatch(pattern, name string) bool {
	var segs func(p, n []string) bool
	segs = func(p, n []string) bool {
		if len(p) == 0 {
			return len(n) == 0
		}
		if p[0] == "**" {
			if len(p) == 1 {
				return len(n) >= 1
			}
			for k := 0; k <= len(n); k++ {
				if segs(p[1:], n[k:]) {
					return true
				}
			}
			return false
		}
		if len(n) == 0 {
			return false
		}
		ok, err := path.Match(p[0], n[0])
		return err == nil && ok && segs(p[1:], n[1:])
	}
	return segs(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func FuzzMatch(f *testing.F) {
	seeds := [][2]string{
		{"tango/*", "tango/core"}, {"a/**/b", "a/x/y/b"}, {"**/meta", "meta"},
		{"All-*", "All-Users"}, {"p?", "pé"}, {"a**", "a"}, {"a[", "a"},
		{"refs/changes/*/*/meta", "refs/changes/45/12345/meta"}, {"**", ""}, {"*/*", "a/b/c"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 64 || len(name) > 64 {
			return // the reference matcher is exponential
		}
		p, err := Compile(pattern)
		if err != nil {
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("Compile(%q): error of type %T", pattern, err)
			}
			return
		}
		got := p.Match(name)
		if utf8.ValidString(name) {
			if want := refMatch(pattern, name); got != want {
				t.Fatalf("Compile(%q).Match(%q) = %v, reference says %v", pattern, name, got, want)
			}
		}
		if !strings.ContainsAny(pattern, "*?") && !p.Match(pattern) {
			t.Fatalf("literal %q does not match itself", pattern)
		}
		if w, ok, err := Witness([]*Pattern{p}, nil); err == nil && ok && !p.Match(w) {
			t.Fatalf("witness %q of %q does not match", w, pattern)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	for _, bc := range []struct{ name, pattern, project string }{
		{"kind=literal", "plugins/replication", "plugins/replication"},
		{"kind=star", "tango/*", "tango/core"},
		{"kind=globstar", "**/meta", "refs/changes/45/12345/meta"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := MustCompile(bc.pattern)
			b.ReportAllocs()
			for b.Loop() {
				if !p.Match(bc.project) {
					b.Fatal("no match")
				}
			}
		})
	}
}
