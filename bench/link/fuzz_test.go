package link

import (
	"testing"
)

// FuzzParseSpec: any input parses or fails cleanly, and a parsed spec
// survives a round trip through String.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{
		"udp:127.0.0.1:9000->127.0.0.1:7443,delay=50ms,jitter=2ms,loss=0.01,bw=1Gbit",
		"tcp:127.0.0.1:0->127.0.0.2:8080,ab.delay=5ms,ba.bw=10MiB/s,loss=1%",
		"tcp:127.0.0.1:1->127.0.0.1:2,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseSpec(s)
		if err != nil {
			return
		}
		back, err := ParseSpec(sp.String())
		if err != nil {
			t.Fatalf("%q parsed, its String %q does not: %v", s, sp.String(), err)
		}
		if back != sp {
			t.Fatalf("%q: round trip %+v != %+v", s, back, sp)
		}
	})
}

// FuzzParseRate: a parsed rate formats and parses back to itself.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"1Gbit", "100Mbit/s", "10MiB/s", "1.5MB/s", "0", "64kbps"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		back, err := ParseRate(FormatRate(r))
		if err != nil || back != r {
			t.Fatalf("%q = %d: FormatRate %q parses to %d, %v", s, r, FormatRate(r), back, err)
		}
	})
}
