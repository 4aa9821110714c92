package refdb

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultIgnore are the refs not guarded by default: Gerrit's auto-merge
// cache is recomputed at each site and never replicated through the refdb.
var DefaultIgnore = []string{"refs/cache-automerge/*"}

// Ignore matches the refs that are NOT guarded by the refdb (`refdb.ignore`,
// DESIGN.md §4). Patterns are globs where '*' matches any run of characters,
// '/' included, and '?' one character. Immutable, safe for concurrent use.
type Ignore struct {
	patterns []string
	re       *regexp.Regexp // nil: nothing ignored
}

// NewIgnore compiles patterns; an empty list ignores nothing.
func NewIgnore(patterns []string) (*Ignore, error) {
	if len(patterns) == 0 {
		return &Ignore{}, nil
	}
	alts := make([]string, len(patterns))
	for i, p := range patterns {
		if p == "" {
			return nil, fmt.Errorf("refdb.ignore[%d]: empty pattern", i)
		}
		var b strings.Builder
		for _, r := range p {
			switch r {
			case '*':
				b.WriteString(".*")
			case '?':
				b.WriteString(".")
			default:
				b.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		alts[i] = b.String()
	}
	re, err := regexp.Compile(`^(?:` + strings.Join(alts, "|") + `)$`)
	if err != nil {
		return nil, fmt.Errorf("refdb.ignore: %w", err)
	}
	return &Ignore{patterns: append([]string(nil), patterns...), re: re}, nil
}

// Match reports whether ref is ignored (not guarded).
func (ig *Ignore) Match(ref string) bool { return ig.re != nil && ig.re.MatchString(ref) }

// Guarded reports whether ref goes through the refdb.
func (ig *Ignore) Guarded(ref string) bool { return !ig.Match(ref) }
