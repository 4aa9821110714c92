package sitesync

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSample(t *testing.T) {
	tests := []struct {
		name, line string
		metric     string
		peer       string
		v          int64
		ok         bool
	}{
		{name: "counter", line: `sitesync_transport_sent_bytes_total{peer="b"} 1234`, metric: sentMetric, peer: "b", v: 1234, ok: true},
		{name: "float", line: `sitesync_transport_received_bytes_total{peer="c"} 1.5e+06`, metric: receivedMetric, peer: "c", v: 1500000, ok: true},
		{name: "more labels", line: `x{kind="y",peer="c"} 7`, metric: "x", peer: "c", v: 7, ok: true},
		{name: "comment", line: `# TYPE sitesync_transport_sent_bytes_total counter`},
		{name: "no labels", line: `go_goroutines 12`},
		{name: "no peer", line: `x{reason="zstd"} 3`},
		{name: "not a number", line: `x{peer="b"} many`},
		{name: "empty", line: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			metric, peer, v, ok := parseSample(tt.line)
			require.Equal(t, tt.ok, ok)
			if ok {
				require.Equal(t, []any{tt.metric, tt.peer, tt.v}, []any{metric, peer, v})
			}
		})
	}
}

// FuzzParseSample: no line makes parseSample panic, and what it accepts
// prints back to a line it reads the same.
func FuzzParseSample(f *testing.F) {
	for _, s := range []string{
		`sitesync_transport_sent_bytes_total{peer="b"} 1234`,
		`x{kind="y",peer="c"} 1.5e+06`,
		`# HELP x y`, `x{peer="\"} 1`, `x{peer=} 1`, `{peer="b"} 1`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		metric, peer, v, ok := parseSample(line)
		if !ok {
			return
		}
		m2, p2, v2, ok2 := parseSample(fmt.Sprintf("%s{peer=%q} %d", metric, peer, v))
		if metric != "" && !strings.ContainsAny(metric, " {") {
			require.True(t, ok2)
			require.Equal(t, []any{metric, peer, v}, []any{m2, p2, v2})
		}
	})
}
