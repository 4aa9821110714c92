package txn

import (
	"strings"
	"testing"
	"time"
)

func TestNewIsValidAndUnique(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	seen := map[string]bool{}
	for _, site := range []string{"a", "site-b_2", "weird/name with spaces", strings.Repeat("x", 100)} {
		for range 1000 {
			id := New(site, now)
			if err := Check(id); err != nil {
				t.Fatalf("New(%q) = %q: %v", site, id, err)
			}
			if seen[id] {
				t.Fatalf("New(%q) repeated %q", site, id)
			}
			seen[id] = true
		}
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		ok   bool
	}{
		{"plain", "a-18bcfe56800-abc", true},
		{"empty", "", false},
		{"slash", "a/b", false},
		{"dot dot", "..", false},
		{"nul", "a\x00", false},
		{"too long", strings.Repeat("a", 129), false},
		{"longest", strings.Repeat("a", 128), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Check(tc.id); (err == nil) != tc.ok {
				t.Fatalf("Check(%q) = %v, want ok=%v", tc.id, err, tc.ok)
			}
		})
	}
}
