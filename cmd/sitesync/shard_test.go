package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/frontdoor"
	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/site"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
	"github.com/sitesync/sitesync/internal/testkit/syncbuf"
)

// runBinary runs the sitesync binary and returns its stdout, stderr and exit code.
func runBinary(tb testing.TB, args ...string) (stdout, stderr string, code int) {
	tb.Helper()
	cmd := exec.Command(build(tb), args...)
	var out, errOut syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		tb.Fatalf("run sitesync %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// siteSpec is one site of a test deployment.
type siteSpec struct {
	name string
	url  string // http.url; also where it listens
	mesh string // mesh.listen; "" for the default
}

// writeSiteConfig writes the configuration of sites[self] and returns its path.
func writeSiteConfig(tb testing.TB, dir string, sites []siteSpec, self int, extra string) string {
	tb.Helper()
	var b strings.Builder
	s := sites[self]
	fmt.Fprintf(&b, "site: {name: %s, repos: repos-%s, state: state-%s}\n", s.name, s.name, s.name)
	fmt.Fprintf(&b, "http: {listen: %q, url: %q}\n", strings.TrimPrefix(s.url, "http://"), s.url)
	b.WriteString("mesh:\n")
	if s.mesh != "" {
		fmt.Fprintf(&b, "  listen: %q\n", s.mesh)
	}
	b.WriteString("  peers:\n")
	for i, p := range sites {
		if i != self {
			fmt.Fprintf(&b, "    - {name: %s, addr: 127.0.0.1:%d, url: %q}\n", p.name, 17000+i, p.url)
		}
	}
	b.WriteString("refdb: {backend: embedded}\n")
	b.WriteString(extra)
	path := filepath.Join(dir, s.name+".yaml")
	require.NoError(tb, writeFileAtomic(path, []byte(b.String())))
	return path
}

const shardRules = `shard:
  projects:
    - {match: "tango/**", sites: [b]}
    - {match: "eu/*", sites: [c, b]}
    - {match: "*/core", sites: [a]}
`

func TestShardHAProxyMapCommand(t *testing.T) {
	dir := t.TempDir()
	sites := []siteSpec{{"a", "http://127.0.0.1:18080", ""}, {"b", "http://127.0.0.1:18081", ""}, {"c", "http://127.0.0.1:18082", ""}}
	cfg := writeSiteConfig(t, dir, sites, 0, shardRules)
	mapOut, cfgOut := filepath.Join(dir, "sitesync.map"), filepath.Join(dir, "haproxy.cfg")

	out, stderr, code := runBinary(t, "shard", "haproxy-map", "--config", cfg, "--map-out", mapOut, "--cfg-out", cfgOut, "--bind", "127.0.0.1:18099")
	require.Equal(t, 0, code, stderr)
	for _, want := range []string{
		"# ---- map file: " + mapOut + " ----\n",
		"# shard.projects[0] \"tango/**\" → b\n/tango/ site_b\n/api/v1/projects/tango%2F site_b\n/api/v1/projects/tango%2f site_b\n",
		"/eu/ sites_c.b\n",
		`# NOTE: shard.projects[2] "*/core" → a starts with a wildcard, which a path prefix cannot express; its projects reach the default backend sitesync_global`,
		"# ---- haproxy configuration ----\n",
		"    bind 127.0.0.1:18099\n",
		"    use_backend %[path,map_beg(" + mapOut + ",sitesync_global)]\n",
		"backend sitesync_global\n    # global projects: every site holds them\n    balance source\n    option httpchk GET /healthz\n" +
			"    server a 127.0.0.1:18080 check\n    server b 127.0.0.1:18081 check\n    server c 127.0.0.1:18082 check\n",
		"backend site_b\n",
		"backend sites_c.b\n",
	} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, `NOTE: shard.projects[1]`, "eu/* is wider than its prefix only by global projects, which every site holds")
	require.NotContains(t, out, "backend site_a\n", "the */core rule has no map line, so no backend")
	m, err := os.ReadFile(mapOut)
	require.NoError(t, err)
	c, err := os.ReadFile(cfgOut)
	require.NoError(t, err)
	require.Equal(t, out, "# ---- map file: "+mapOut+" ----\n"+string(m)+"\n# ---- haproxy configuration ----\n"+string(c),
		"the files hold what was printed")
	if hp, err := exec.LookPath("haproxy"); err == nil {
		check, err := exec.Command(hp, "-c", "-f", cfgOut).CombinedOutput()
		require.NoError(t, err, "haproxy accepts the configuration:\n%s", check)
	}

	// --map-path names where HAProxy reads the map.
	out, _, code = runBinary(t, "shard", "haproxy-map", "--config", cfg, "--map-path", "/srv/lb/x.map")
	require.Equal(t, 0, code)
	require.Contains(t, out, "map_beg(/srv/lb/x.map,sitesync_global)")
	require.Contains(t, out, "    bind *:80\n")

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad config", []string{"--config", writeBad(t, dir)}, `shard.projects[0].sites: unknown site "z"`},
		{"missing config file", []string{"--config", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runBinary(t, append([]string{"shard", "haproxy-map"}, tt.args...)...)
			require.Equal(t, 2, code, "stdout:\n%s\nstderr:\n%s", out, stderr)
			require.Empty(t, out)
			require.Contains(t, stderr, tt.want)
		})
	}
	_, stderr, code = runBinary(t, "shard", "haproxy-map")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, `required flag(s) "config" not set`)
}

func writeBad(tb testing.TB, dir string) string {
	tb.Helper()
	p := filepath.Join(dir, "bad.yaml")
	require.NoError(tb, os.WriteFile(p, []byte("site: {name: a, repos: r, state: s}\nhttp: {url: 'http://127.0.0.1:1'}\nrefdb: {backend: none}\nshard: {projects: [{match: 'x/*', sites: [z]}]}\n"), 0o644))
	return p
}

// frontDoor is a front door on loopback run by the test, as `serve` wires it:
// its Route reads the site's configuration. log is its request log.
type frontDoor struct {
	spec siteSpec
	root string
	log  *syncbuf.Buffer
}

// listenSites reserves a loopback listener per site name.
func listenSites(tb testing.TB, names ...string) ([]siteSpec, []net.Listener) {
	tb.Helper()
	var specs []siteSpec
	var lns []net.Listener
	for _, n := range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(tb, err)
		specs = append(specs, siteSpec{name: n, url: "http://" + ln.Addr().String()})
		lns = append(lns, ln)
	}
	return specs, lns
}

func startFrontDoor(tb testing.TB, cfgPath string, ln net.Listener) *frontDoor {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	live, err := config.NewLive(cfgPath, log)
	require.NoError(tb, err)
	cfg := live.Current()
	require.NoError(tb, os.MkdirAll(cfg.Site.Repos, 0o755))
	root, err := git.NewRoot(cfg.Site.Repos)
	require.NoError(tb, err)
	repos := git.NewRepos(root)
	fd := &frontDoor{spec: siteSpec{name: cfg.Site.Name, url: cfg.HTTP.URL}, root: root.Dir(), log: &syncbuf.Buffer{}}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: frontdoor.New(frontdoor.Config{
		Site:  cfg.Site.Name,
		Repos: repos,
		Log:   slog.New(slog.NewTextHandler(fd.log, nil)),
		Route: site.Route(live, nil, nil),
	})}}
	srv.Start()
	tb.Cleanup(func() {
		srv.Close()
		require.NoError(tb, repos.Close())
	})
	return fd
}

// projectRequests returns the request log lines of fd that name project.
func (fd *frontDoor) projectRequests(project string) []string {
	var out []string
	for _, l := range strings.Split(fd.log.String(), "\n") {
		if strings.Contains(l, "project="+project+" ") {
			out = append(out, l)
		}
	}
	return out
}

// TestHAProxyRoutesByPlacement puts a real HAProxy, configured by `sitesync
// shard haproxy-map`, in front of three sites: requests for a local project
// reach its site directly (no redirect, the other sites never see them) and
// a global project goes to the default backend.
func TestHAProxyRoutesByPlacement(t *testing.T) {
	hp, err := exec.LookPath("haproxy")
	if err != nil {
		hp = "/usr/sbin/haproxy"
	}
	_, err = os.Stat(hp)
	require.NoError(t, err, "haproxy is needed: scripts/test (and .ci/run) install it from Debian")
	dir := t.TempDir()
	specs, lns := listenSites(t, "a", "b", "c")
	var doors []*frontDoor
	var cfgPaths []string
	for i := range specs {
		cfgPaths = append(cfgPaths, writeSiteConfig(t, dir, specs, i, shardRules))
	}
	for i := range specs {
		doors = append(doors, startFrontDoor(t, cfgPaths[i], lns[i]))
	}
	a, b, c := doors[0], doors[1], doors[2]

	lbAddr := freePort(t)
	mapOut, cfgOut := filepath.Join(dir, "sitesync.map"), filepath.Join(dir, "haproxy.cfg")
	root := newRootCmd()
	root.SetArgs([]string{"shard", "haproxy-map", "--config", cfgPaths[0], "--map-out", mapOut, "--cfg-out", cfgOut, "--bind", lbAddr})
	root.SetOut(io.Discard)
	require.NoError(t, root.Execute())

	var hpLog syncbuf.Buffer
	proxy := exec.Command(hp, "-db", "-f", cfgOut)
	proxy.Stdout, proxy.Stderr = &hpLog, &hpLog
	require.NoError(t, proxy.Start())
	t.Cleanup(func() {
		_ = proxy.Process.Signal(syscall.SIGTERM)
		_ = proxy.Wait()
	})
	lb := "http://" + lbAddr
	waitHealthy(t, lb, 10*time.Second, "haproxy never answered", &hpLog)

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	put := func(escaped string) *http.Response {
		req, err := http.NewRequest(http.MethodPut, lb+"/api/v1/projects/"+escaped, nil)
		require.NoError(t, err)
		resp, err := noFollow.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	env := gittest.Env(t)
	src := gittest.Generate(t, env, gittest.Shape{Commits: 20, Branches: 2, Tags: 1})
	want := env.Refs(t, src)

	tests := []struct {
		name, project, escaped string
		backend                string
		placement              []*frontDoor // the sites HAProxy may pick
		others                 []*frontDoor // never asked
	}{
		{"local project on b", "tango/secret", "tango%2Fsecret", "site_b", []*frontDoor{b}, []*frontDoor{a, c}},
		{"local project on c and b", "eu/app", "eu%2fapp", "sites_c.b", []*frontDoor{c, b}, []*frontDoor{a}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := put(tt.escaped)
			require.Equal(t, http.StatusCreated, resp.StatusCode, "created by a placement site itself, no redirect")
			require.Equal(t, tt.backend, resp.Header.Get("X-Sitesync-Backend"))
			url := lb + "/" + tt.project + ".git"
			out, err := env.Try(src, "push", url, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
			require.NoError(t, err, out)
			require.NotContains(t, out, "redirecting")
			dst := filepath.Join(t.TempDir(), "clone.git")
			out, err = env.Try("", "clone", "--mirror", url, dst)
			require.NoError(t, err, out)
			require.NotContains(t, out, "redirecting")
			require.Equal(t, want, env.Refs(t, dst))

			var asked []*frontDoor
			for _, d := range tt.placement {
				if reqs := d.projectRequests(tt.project); len(reqs) > 0 {
					asked = append(asked, d)
					require.NotContains(t, strings.Join(reqs, "\n"), "status=307")
				}
			}
			require.Len(t, asked, 1, "every request of one client reaches one placement site (balance source)")
			require.Equal(t, want, env.Refs(t, filepath.Join(asked[0].root, tt.project+".git")), "the push landed at site %s", asked[0].spec.name)
			for _, o := range tt.others {
				require.Empty(t, o.projectRequests(tt.project), "site %s was never asked for %s", o.spec.name, tt.project)
				require.NoDirExists(t, filepath.Join(o.root, strings.Split(tt.project, "/")[0]))
			}
		})
	}

	t.Run("global project goes to the default backend", func(t *testing.T) {
		resp := put("platform%2Fweb")
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		require.Equal(t, "sitesync_global", resp.Header.Get("X-Sitesync-Backend"))
		url := lb + "/platform/web.git"
		env.Run(t, src, "push", "--quiet", url, "main")
		var holders []string
		for _, d := range doors {
			if len(d.projectRequests("platform/web")) > 0 {
				holders = append(holders, d.spec.name)
				require.Equal(t, want["refs/heads/main"], env.Refs(t, filepath.Join(d.root, "platform", "web.git"))["refs/heads/main"])
			}
		}
		require.Len(t, holders, 1, "every request of one client reaches one site (balance source)")
	})

	t.Run("a project the map cannot express is redirected by the front door", func(t *testing.T) {
		// "*/core" (on a) has no map line: HAProxy sends it to the default
		// backend, whose site redirects unless it is a.
		req, err := http.NewRequest(http.MethodPut, lb+"/api/v1/projects/x%2Fcore", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req) // follows the 307
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		require.DirExists(t, filepath.Join(a.root, "x", "core.git"))
		require.NoDirExists(t, filepath.Join(b.root, "x"))
		require.NoDirExists(t, filepath.Join(c.root, "x"))
		redirected := strings.Contains(strings.Join(append(b.projectRequests("x/core"), c.projectRequests("x/core")...), "\n"), "status=307")
		direct := !redirected && len(a.projectRequests("x/core")) > 0
		require.True(t, redirected || direct)
		t.Logf("the default backend picked a site that redirected: %v", redirected)
	})
}

// TestServeRedirectsByPlacement runs `sitesync serve` for site a: a request
// for a project placed on b gets 307 to b and leaves nothing at a, and a
// reloaded shard rule applies to the next request.
func TestServeRedirectsByPlacement(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	sites := []siteSpec{{"a", "http://" + freePort(t), freeUDPPort(t)}, {"b", "http://127.0.0.1:18081", ""}}
	cfgPath := writeSiteConfig(t, dir, sites, 0, "shard: {projects: [{match: 'tango/**', sites: [b]}]}\n")
	out, err := exec.Command(bin, "certs", "init", "--dir", filepath.Join(dir, "certs"), "--sites", "a,b").CombinedOutput()
	require.NoError(t, err, "%s", out)

	var logs syncbuf.Buffer
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	base := sites[0].url
	waitHealthy(t, base, 20*time.Second, "site never became healthy", &logs)

	// `sitesync status` reads the real status endpoint of the site.
	statusOut, stderr, code := runBinary(t, "status", "--config", cfgPath)
	require.Equal(t, 0, code, "%s\n%s", statusOut, stderr)
	require.Contains(t, statusOut, "Status\n  site      a\n")
	require.Regexp(t, `\n  b +no +- `, statusOut, "peer b is not running")
	require.Contains(t, statusOut, "  [0]  tango/**  → b\n")

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	put := func() *http.Response {
		req, err := http.NewRequest(http.MethodPut, base+"/api/v1/projects/tango%2Fsecret", nil)
		require.NoError(t, err)
		resp, err := noFollow.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	repos := filepath.Join(dir, "repos-a")
	resp := put()
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	require.Equal(t, "http://127.0.0.1:18081/api/v1/projects/tango%2Fsecret", resp.Header.Get("Location"))
	resp, err = noFollow.Get(base + "/tango/secret.git/info/refs?service=git-upload-pack")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	require.Equal(t, "http://127.0.0.1:18081/tango/secret.git/info/refs?service=git-upload-pack", resp.Header.Get("Location"))
	require.NoDirExists(t, filepath.Join(repos, "tango"))

	// Place tango/** on a as well: a serves it from the next request on.
	writeSiteConfig(t, dir, sites, 0, "shard: {projects: [{match: 'tango/**', sites: [b, a]}]}\n")
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return put().StatusCode == http.StatusCreated }, 10*time.Second, 50*time.Millisecond, "%s", &logs)
	require.DirExists(t, filepath.Join(repos, "tango", "secret.git"))
}

func freeUDPPort(tb testing.TB) string {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer pc.Close()
	return pc.LocalAddr().String()
}
