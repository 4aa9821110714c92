package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/config"
)

const statusRules = `replication:
  mode: quorum
  projects:
    - {match: "All-*", mode: sync, timeout: 30s}
    - {match: "tango/**", acks: 1}
    - {match: "tango/old/**", mode: async}
` + shardRules

// statusSite serves body at /api/v1/status with the given HTTP status.
func statusSite(tb testing.TB, status int, body string) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/status" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

func TestStatusCommand(t *testing.T) {
	dir := t.TempDir()
	up := statusSite(t, http.StatusOK, `{"site":"a","instance":"5f1c0e7e-1111-4222-8333-944445555666",
		"peers":[{"name":"b","connected":true,"rtt_ms":1.25,"since":"2025-01-02T03:04:05Z"},{"name":"c","connected":false,"rtt_ms":0,"behind_txns":3,"behind_s":72.46}],
		"refdb":{"backend":"etcd","healthy":false,"error":"context deadline exceeded"},
		"queues":{"outbound":3,"prepared":1},"lag":{"projects_behind":2,"caught_up":false,"peers_behind":1},"future":"ignored"}`)
	cfg := writeSiteConfig(t, dir, []siteSpec{{"a", up, ""}, {"b", "http://127.0.0.1:18081", ""}, {"c", "http://127.0.0.1:18082", ""}}, 0, statusRules)

	// The configuration part is the same whether the site is up or down.
	configPart := []string{
		"Sites (configuration)\n  a  " + up + "  (this site)\n  b  http://127.0.0.1:18081\n  c  http://127.0.0.1:18082\n",
		"Shard rules (first match wins; unmatched projects are global: every site (a, b, c))\n" +
			"  [0]  tango/**  → b\n  [1]  eu/*      → c, b\n  [2]  */core    → a\n",
		"Replication rules (first match wins)\n  [0] All-*\n      global  on a, b, c  sync, acks 3, timeout 30s  e.g. \"All-\"\n",
		"  [1] tango/**\n      shard [0]  on b  quorum, acks 1, timeout 10s  e.g. \"tango/x\"\n",
		"  [2] tango/old/**\n      never applies (earlier rules match every project it matches)\n",
		"  default\n      shard [1]  on c, b     quorum, acks 2, timeout 10s  e.g. \"eu/x\"\n" +
			"      shard [2]  on a        quorum, acks 1, timeout 10s  e.g. \"x/core\"\n" +
			"      global     on a, b, c  quorum, acks 2, timeout 10s  e.g. \"x\"\n",
	}

	out, stderr, code := runBinary(t, "status", "--config", cfg)
	require.Equal(t, 0, code, stderr)
	for _, want := range append([]string{
		"site a at " + up + " (config " + cfg + ")\n",
		"Status\n  site      a\n  instance  5f1c0e7e-1111-4222-8333-944445555666\n" +
			"  refdb     etcd, UNHEALTHY: context deadline exceeded\n  queues    outbound 3, prepared 1\n  lag       2 projects behind, NOT caught up, 1 peer behind this site\n",
		"Peers\n  NAME  CONNECTED  RTT    SINCE                 BEHIND\n  b     yes        1.2ms  2025-01-02T03:04:05Z  -\n  c     no         -      -                     3 transactions, oldest 1m12.5s ago\n",
	}, configPart...) {
		require.Contains(t, out, want)
	}

	tests := []struct {
		name, url, want string
	}{
		{"site down", "http://" + freePort(t), "connection refused"},
		{"no status endpoint", statusSite(t, http.StatusNotFound, "no such API endpoint"), "404 Not Found: no such API endpoint"},
		{"bad body", statusSite(t, http.StatusOK, "{"), "bad status body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeSiteConfig(t, t.TempDir(), []siteSpec{{"a", tt.url, ""}, {"b", "http://127.0.0.1:18081", ""}, {"c", "http://127.0.0.1:18082", ""}}, 0, statusRules)
			out, stderr, code := runBinary(t, "status", "--config", cfg, "--timeout", "2s")
			require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, stderr)
			require.Contains(t, out, "SITE DOWN: ")
			require.Contains(t, out, tt.want)
			require.Contains(t, stderr, "sitesync: site a is down: ")
			for _, want := range configPart[1:] {
				require.Contains(t, out, want, "the configuration part is printed anyway")
			}
		})
	}

	out, stderr, code = runBinary(t, "status", "--config", writeBad(t, dir))
	require.Equal(t, 2, code)
	require.Empty(t, out)
	require.Contains(t, stderr, `shard.projects[0].sites: unknown site "z"`)
}

// FuzzStatusBody decodes what a site (or anything at its URL) answers: no
// panic when decoding or printing, and a decoded body survives a round trip.
func FuzzStatusBody(f *testing.F) {
	f.Add([]byte(`{"site":"a","instance":"u","peers":[{"name":"b","connected":true,"rtt_ms":1.2,"since":"2025-01-02T03:04:05Z"}],"refdb":{"backend":"etcd","healthy":true,"error":""},"queues":{"outbound":0,"prepared":0},"lag":{"projects_behind":0}}`))
	f.Add([]byte(`{"peers":[{"name":"c","rtt_ms":null}],"refdb":{"healthy":false,"error":"x"}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"peers":[null]}`))
	c := fuzzConfig(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		st, err := decodeStatus(body)
		if err != nil {
			return
		}
		printStatus(io.Discard, c, st)
		again, err := json.Marshal(st)
		require.NoError(t, err)
		st2, err := decodeStatus(again)
		require.NoError(t, err)
		require.Equal(t, st, st2)
	})
}

func fuzzConfig(tb testing.TB) *config.Config {
	tb.Helper()
	c, err := config.Parse(strings.NewReader("site: {name: a, repos: r, state: s}\nhttp: {url: 'http://127.0.0.1:1'}\nrefdb: {backend: none}\n"), tb.TempDir())
	require.NoError(tb, err)
	return c
}
