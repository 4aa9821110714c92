package keys

import (
	"bytes"
	"testing"
)

func TestRangesDisjoint(t *testing.T) {
	l := Layout{Prefix: "/sitesync"}
	projects := []string{"a", "a/b", "a\x00b", "a\x00", "a\x01", "ab", "a b", "", "\x00", "\x00\x01", "a/", "é"}
	for _, p := range projects {
		for _, q := range projects {
			if p == q {
				continue
			}
			k := l.Ref(q, "refs/heads/main")
			if bytes.Compare(k, l.Start(p)) >= 0 && bytes.Compare(k, l.End(p)) < 0 {
				t.Errorf("key of project %q falls in the range of %q", q, p)
			}
		}
		k := l.Ref(p, "refs/x")
		if bytes.Compare(k, l.Start(p)) < 0 || bytes.Compare(k, l.End(p)) >= 0 {
			t.Errorf("key of project %q outside its own range", p)
		}
		if ref, ok := l.RefOf(p, k); !ok || ref != "refs/x" {
			t.Errorf("RefOf(%q) = %q, %v", p, ref, ok)
		}
	}
}

func FuzzRangesDisjoint(f *testing.F) {
	f.Add("a", "a/b", "refs/heads/x")
	f.Add("a\x00", "a", "refs/x")
	f.Fuzz(func(t *testing.T, p, q, ref string) {
		if p == q {
			return
		}
		l := Layout{Prefix: "p"}
		k := l.Ref(q, ref)
		if bytes.Compare(k, l.Start(p)) >= 0 && bytes.Compare(k, l.End(p)) < 0 {
			t.Fatalf("key of %q in range of %q", q, p)
		}
	})
}
