package glob

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// Error is a pattern that Compile refused.
type Error struct {
	Pattern string
	Reason  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("bad pattern %q: %s", e.Pattern, e.Reason)
}

// class is what one NFA edge consumes.
type class uint8

const (
	litClass class = iota // exactly the rune lit
	segClass              // any rune except '/'
	anyClass              // any rune
)

type edge struct {
	cls class
	lit rune
	to  int
}

type state struct {
	edges []edge
	eps   []int
}

// Pattern is a compiled glob. The zero value is not usable; use Compile.
type Pattern struct {
	src     string
	states  []state // state 0 starts, state len-1 accepts
	literal bool    // no wildcards: Match is string equality
}

// Compile parses pattern. Errors are *Error and say what is wrong.
func Compile(pattern string) (*Pattern, error) {
	bad := func(format string, args ...any) (*Pattern, error) {
		return nil, &Error{Pattern: pattern, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case pattern == "":
		return bad("empty pattern")
	case !utf8.ValidString(pattern):
		return bad("invalid UTF-8")
	case strings.HasPrefix(pattern, "/"):
		return bad("must not start with '/' (names are relative)")
	case strings.HasSuffix(pattern, "/"):
		return bad("must not end with '/' (use \"/**\" for everything below)")
	}
	for _, r := range pattern {
		switch {
		case r < 0x20 || r == 0x7f:
			return bad("control character %U", r)
		case strings.ContainsRune(`[]{}\`, r):
			return bad("%q is reserved (no character classes, alternatives or escapes)", r)
		}
	}
	segs := strings.Split(pattern, "/")
	for _, s := range segs {
		if s == "" {
			return bad("empty path segment (\"//\")")
		}
		if s != "**" && strings.Contains(s, "**") {
			return bad("%q: \"**\" must be a whole path segment", s)
		}
	}

	p := &Pattern{src: pattern, literal: !strings.ContainsAny(pattern, "*?")}
	p.states = []state{{}}
	cur := 0
	add := func() int {
		p.states = append(p.states, state{})
		return len(p.states) - 1
	}
	step := func(cls class, lit rune) {
		n := add()
		p.states[cur].edges = append(p.states[cur].edges, edge{cls: cls, lit: lit, to: n})
		cur = n
	}
	loop := func(cls class) {
		n := add()
		p.states[cur].eps = append(p.states[cur].eps, n)
		p.states[n].edges = append(p.states[n].edges, edge{cls: cls, to: n})
		cur = n
	}
	last := len(segs) - 1
	for i, s := range segs {
		if s == "**" {
			if i == last {
				loop(anyClass)
				continue
			}
			// Zero or more whole segments, each with its '/': either skip
			// straight to after, or any run ending in '/'.
			after := add()
			l := add()
			p.states[cur].eps = append(p.states[cur].eps, after, l)
			p.states[l].edges = append(p.states[l].edges,
				edge{cls: anyClass, to: l}, edge{cls: litClass, lit: '/', to: after})
			cur = after
			continue
		}
		for _, r := range s {
			switch r {
			case '*':
				loop(segClass)
			case '?':
				step(segClass, 0)
			default:
				step(litClass, r)
			}
		}
		if i != last {
			step(litClass, '/')
		}
	}
	// The accepting state must be the last one.
	if cur != len(p.states)-1 {
		n := add()
		p.states[cur].eps = append(p.states[cur].eps, n)
	}
	return p, nil
}

// MustCompile is Compile for patterns known at compile time; it panics on error.
func MustCompile(pattern string) *Pattern {
	p, err := Compile(pattern)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the source pattern.
func (p *Pattern) String() string { return p.src }

// Match reports whether name matches the whole pattern.
func (p *Pattern) Match(name string) bool {
	if p.literal {
		return name == p.src
	}
	cur := p.start()
	next := newSet(len(p.states))
	for _, r := range name {
		p.step(cur, r, next)
		if next.empty() {
			return false
		}
		cur, next = next, cur
	}
	return cur.has(p.accept())
}

// FirstMatch returns the index of the first pattern that matches name, or -1.
// Rules of sitesync are "first match wins"; this is that rule.
func FirstMatch(patterns []*Pattern, name string) int {
	for i, p := range patterns {
		if p.Match(name) {
			return i
		}
	}
	return -1
}

func (p *Pattern) accept() int { return len(p.states) - 1 }

func (p *Pattern) start() set {
	s := newSet(len(p.states))
	p.close(s, 0)
	return s
}

// close adds i and everything reachable from it by epsilon edges.
func (p *Pattern) close(s set, i int) {
	if s.has(i) {
		return
	}
	s.add(i)
	for _, j := range p.states[i].eps {
		p.close(s, j)
	}
}

// step computes into next the states reachable from cur by consuming r.
func (p *Pattern) step(cur set, r rune, next set) {
	next.clear()
	for w, word := range cur {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			word &^= 1 << b
			for _, e := range p.states[w*64+b].edges {
				if e.cls == anyClass || (e.cls == segClass && r != '/') || (e.cls == litClass && r == e.lit) {
					p.close(next, e.to)
				}
			}
		}
	}
}

// set is a bitset of NFA states.
type set []uint64

func newSet(n int) set       { return make(set, (n+63)/64) }
func (s set) has(i int) bool { return s[i/64]&(1<<(i%64)) != 0 }
func (s set) add(i int)      { s[i/64] |= 1 << (i % 64) }
func (s set) clear() {
	for i := range s {
		s[i] = 0
	}
}
func (s set) empty() bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}

// ErrTooComplex is returned by Witness when the patterns' combined automaton is
// too large to explore; callers should treat the answer as unknown.
var ErrTooComplex = errors.New("glob: patterns too complex to compare")

// witnessLimit bounds the product states Witness explores. Rule patterns in
// a configuration file are short; this is far above what they need, and keeps
// a hostile file from making validation slow.
const witnessLimit = 1 << 15

// Witness returns the shortest well-formed name (non-empty segments, no leading
// or trailing '/') that every pattern of include matches and no pattern of
// exclude matches; ok is false when there is none. With first-match-wins rules,
// "is rule i ever the one that applies?" is Witness({rule i}, {rules 0..i-1}).
// The answer is exact, not a heuristic: it explores the product of the
// patterns' automata over an alphabet of every literal rune, '/', and one
// representative of all other runes. Among names of equal length the result is
// deterministic.
func Witness(include, exclude []*Pattern) (name string, ok bool, err error) {
	all := append(append([]*Pattern(nil), include...), exclude...)
	alphabet, err := alphabetOf(all)
	if err != nil {
		return "", false, err
	}

	// A product state: one NFA state set per pattern, plus where we are in
	// a well-formed name: 0 at the start, 1 inside a segment, 2 just after '/'.
	type node struct {
		sets   []set
		form   uint8
		parent int
		r      rune
	}
	key := func(n *node) string {
		var b strings.Builder
		b.WriteByte(n.form)
		for _, s := range n.sets {
			for _, w := range s {
				for k := 0; k < 8; k++ {
					b.WriteByte(byte(w >> (8 * k)))
				}
			}
		}
		return b.String()
	}
	start := &node{form: 0, parent: -1}
	for _, p := range all {
		start.sets = append(start.sets, p.start())
	}
	nodes := []*node{start}
	seen := map[string]bool{key(start): true}
	for i := 0; i < len(nodes); i++ {
		n := nodes[i]
		if n.form == 1 && acceptsAll(n.sets, all, len(include)) {
			var rs []rune
			for j := i; nodes[j].parent >= 0; j = nodes[j].parent {
				rs = append(rs, nodes[j].r)
			}
			for a, b := 0, len(rs)-1; a < b; a, b = a+1, b-1 {
				rs[a], rs[b] = rs[b], rs[a]
			}
			return string(rs), true, nil
		}
		for _, r := range alphabet {
			var form uint8
			switch {
			case r != '/':
				form = 1
			case n.form == 1:
				form = 2
			default:
				continue // empty segment: not a well-formed name
			}
			m := &node{form: form, parent: i, r: r}
			dead := false
			for k, p := range all {
				s := newSet(len(p.states))
				p.step(n.sets[k], r, s)
				if k < len(include) && s.empty() {
					dead = true // an include pattern can no longer match
					break
				}
				m.sets = append(m.sets, s)
			}
			if dead {
				continue
			}
			if k := key(m); !seen[k] {
				if len(nodes) >= witnessLimit {
					return "", false, ErrTooComplex
				}
				seen[k] = true
				nodes = append(nodes, m)
			}
		}
	}
	return "", false, nil
}

func acceptsAll(sets []set, all []*Pattern, nInclude int) bool {
	for k, p := range all {
		if sets[k].has(p.accept()) != (k < nInclude) {
			return false
		}
	}
	return true
}

// alphabetOf returns '/', every literal rune of the patterns, and one rune that
// stands for all the others (a wildcard cannot tell them apart), sorted so the
// witness is deterministic and readable.
func alphabetOf(ps []*Pattern) ([]rune, error) {
	lits := map[rune]bool{'/': true}
	for _, p := range ps {
		for _, s := range p.states {
			for _, e := range s.edges {
				if e.cls == litClass {
					lits[e.lit] = true
				}
			}
		}
	}
	other := rune(-1)
	for _, r := range "xyzqjkwvabcdefghilmnoprstu0123456789" {
		if !lits[r] {
			other = r
			break
		}
	}
	for r := rune('!'); other < 0 && r < 0x3000; r++ {
		if !lits[r] && !strings.ContainsRune(`*?[]{}\/`, r) {
			other = r
		}
	}
	if other < 0 {
		return nil, ErrTooComplex
	}
	out := []rune{other}
	for r := range lits {
		out = append(out, r)
	}
	// Readable first: the stand-in for "anything", then literals in order.
	rest := out[1:]
	for i := 1; i < len(rest); i++ {
		for j := i; j > 0 && rest[j] < rest[j-1]; j-- {
			rest[j], rest[j-1] = rest[j-1], rest[j]
		}
	}
	return out, nil
}
