package main

import (
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/config"
)

// importSite is a fake site API: POST /api/v1/projects/{name}/import
// answers what answers[name] says (default 404), and the imports asked
// for are recorded.
func importSite(tb testing.TB, answers map[string]func(w http.ResponseWriter)) (url string, asked func() []string) {
	tb.Helper()
	var mu sync.Mutex
	var got []string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/api/v1/projects/")
		name, ok2 := strings.CutSuffix(rest, "/import")
		if !ok || !ok2 || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		name = strings.ReplaceAll(name, "%2F", "/")
		mu.Lock()
		got = append(got, name)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if f := answers[name]; f != nil {
			f(w)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"repository not found"}`))
	})}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := append([]string(nil), got...)
		sort.Strings(out)
		return out
	}
}

func answer(status int, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func TestImportCommand(t *testing.T) {
	imported := answer(http.StatusOK, `{"project":"tango/core","site":"a","refs":243,"seeded":240,
		"found":{"b":"none","c":"identical"},"peers":{"c":"copied","b":"copied"}}`)
	url, asked := importSite(t, map[string]func(http.ResponseWriter){
		"tango/core": imported,
		"eu/x":       answer(http.StatusConflict, `{"error":"import of \"eu/x\" refused: site b holds a different copy than site a: 1 ref differs (...)\nsite c could not be asked"}`),
		"eu/y": func(w http.ResponseWriter) {
			w.Header().Set("Location", "http://127.0.0.1:18081/api/v1/projects/eu%2Fy/import")
			w.WriteHeader(http.StatusTemporaryRedirect)
		},
		"eu/z": answer(http.StatusServiceUnavailable, `{"error":"refdb unavailable: read the refdb's records of \"eu/z\": timeout"}`),
	})
	dir := t.TempDir()
	cfg := writeSiteConfig(t, dir, []siteSpec{{"a", url, ""}, {"b", "http://127.0.0.1:18081", ""}, {"c", "http://127.0.0.1:18082", ""}}, 0, "")

	out, stderr, code := runBinary(t, "import", "--config", cfg, "tango/core")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, stderr)
	require.Equal(t, "tango/core: imported 243 refs (240 new in the refdb); b: copied (had none), c: copied (had the same refs)\n", out)

	out, stderr, code = runBinary(t, "import", "--config", cfg, "tango/core", "eu/x", "eu/y", "eu/z", "eu/none")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, stderr)
	for _, want := range []string{
		"tango/core: imported 243 refs",
		`eu/x: REFUSED: import of "eu/x" refused: site b holds a different copy than site a: 1 ref differs (...) | site c could not be asked` + "\n",
		"eu/y: NOT IMPORTED: not placed at this site (the site sends it to http://127.0.0.1:18081/api/v1/projects/eu%2Fy/import)\n",
		`eu/z: REFUSED: refdb unavailable: read the refdb's records of "eu/z": timeout` + "\n",
		"eu/none: REFUSED: repository not found\n",
	} {
		require.Contains(t, out, want)
	}
	require.Contains(t, stderr, "sitesync: 4 of 5 projects not imported")

	// --all imports every repository under site.repos.
	repos := filepath.Join(dir, "repos-a")
	for _, p := range []string{"tango/core", "solo"} {
		require.NoError(t, exec.Command("git", "init", "--quiet", "--bare", filepath.Join(repos, p+".git")).Run())
	}
	before := len(asked())
	out, stderr, code = runBinary(t, "import", "--config", cfg, "--all")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, stderr)
	require.Equal(t, "solo: REFUSED: repository not found\ntango/core: imported 243 refs (240 new in the refdb); b: copied (had none), c: copied (had the same refs)\n", out)
	require.Len(t, asked(), before+2)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"neither projects nor --all", []string{"import", "--config", cfg}, "name the projects to import, or give --all"},
		{"both", []string{"import", "--config", cfg, "--all", "x"}, "name the projects to import, or give --all"},
		{"bad config", []string{"import", "--config", writeBad(t, dir), "x"}, `unknown site "z"`},
		{"site down", []string{"import", "--config", writeSiteConfig(t, t.TempDir(), []siteSpec{{"a", "http://" + freePort(t), ""}, {"b", "http://127.0.0.1:18081", ""}}, 0, ""), "x"},
			"sitesync: site a is not reachable at http://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runBinary(t, tc.args...)
			require.Equal(t, 2, code, "stdout:\n%s\nstderr:\n%s", out, stderr)
			require.Contains(t, stderr, tc.want)
		})
	}
}

func TestLocalAPI(t *testing.T) {
	for _, tc := range []struct {
		listen, url, want string
	}{
		{"127.0.0.1:8080", "http://git.example.com", "http://127.0.0.1:8080"},
		{"0.0.0.0:8080", "http://lb.example.com:80", "http://127.0.0.1:8080"},
		{":8080", "", "http://127.0.0.1:8080"},
		{"[::]:8080", "", "http://[::1]:8080"},
		{"10.1.2.3:9000", "http://lb.example.com", "http://10.1.2.3:9000"},
		{"not an address", "http://a.example.com/", "http://a.example.com"},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			require.Equal(t, tc.want, localAPI(&config.Config{HTTP: config.HTTP{Listen: tc.listen, URL: tc.url}}))
		})
	}
}

// sitesync status names the repositories to import.
func TestStatusShowsUnimported(t *testing.T) {
	up := statusSite(t, http.StatusOK, `{"site":"a","refdb":{"backend":"etcd","healthy":true},"lag":{"caught_up":true},"unimported":["tango/core","x"]}`)
	cfg := writeSiteConfig(t, t.TempDir(), []siteSpec{{"a", up, ""}, {"b", "http://127.0.0.1:18081", ""}}, 0, "")
	out, stderr, code := runBinary(t, "status", "--config", cfg)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "  unimported  tango/core, x (sitesync import makes them replicated projects)\n")
}
