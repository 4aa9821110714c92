package frontdoor

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
	"github.com/sitesync/sitesync/internal/testkit/syncbuf"
)

// routedSite is a front door on loopback whose Route is set after start, so
// sites can name each other's URLs; log holds its request log.
type routedSite struct {
	url  string
	root string
	log  *syncbuf.Buffer
	mu   sync.Mutex
	// routes maps a project to the base URL it is redirected to.
	routes map[string]string
}

func startRoutedSite(tb testing.TB, name string) *routedSite {
	tb.Helper()
	root, err := git.NewRoot(tb.TempDir())
	require.NoError(tb, err)
	repos := git.NewRepos(root)
	s := &routedSite{root: root.Dir(), log: &syncbuf.Buffer{}, routes: map[string]string{}}
	srv := httptest.NewServer(New(Config{
		Site:  name,
		Repos: repos,
		Log:   slog.New(slog.NewTextHandler(s.log, nil)),
		Route: func(project string) (string, bool) {
			s.mu.Lock()
			defer s.mu.Unlock()
			base, ok := s.routes[project]
			return base, ok
		},
	}))
	tb.Cleanup(func() {
		srv.Close()
		require.NoError(tb, repos.Close())
	})
	s.url = srv.URL
	return s
}

func (s *routedSite) route(project, base string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[project] = base
}

// noFollow is a client that returns redirects instead of following them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestRedirectToPlacementSite(t *testing.T) {
	a := startRoutedSite(t, "a")
	b := startRoutedSite(t, "b")
	a.route("tango/secret", b.url)
	env := gittest.Env(t)
	before := listTree(t, a.root)

	// The API answers 307 with the same path at b, and creates nothing here.
	req, err := http.NewRequest(http.MethodPut, a.url+"/api/v1/projects/tango%2Fsecret?x=1", nil)
	require.NoError(t, err)
	resp, err := noFollow.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode, string(body))
	require.Equal(t, b.url+"/api/v1/projects/tango%2Fsecret?x=1", resp.Header.Get("Location"))
	require.Contains(t, string(body), `project "tango/secret" is not held at site a`)
	// A client that follows it creates the project at b.
	resp = putProject(t, a.url, "tango%2Fsecret")
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	bare := filepath.Join(b.root, "tango", "secret.git")
	require.DirExists(t, bare)

	// Push, clone and fetch through a's URL all land on b.
	url := a.url + "/tango/secret.git"
	src := gittest.Generate(t, env, gittest.Shape{Commits: 30, Branches: 3, Tags: 2})
	out, err := env.Try(src, "push", url, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
	require.NoError(t, err, out)
	require.Contains(t, out, "redirecting to "+b.url+"/tango/secret.git", "git says it followed the redirect")
	want := env.Refs(t, src)
	require.Equal(t, want, env.Refs(t, bare), "b's refs changed")

	clones := map[string]string{}
	for _, version := range []string{"0", "2"} {
		dst := filepath.Join(t.TempDir(), "clone.git")
		env.Run(t, "", "-c", "protocol.version="+version, "clone", "--quiet", "--mirror", url, dst)
		require.Equal(t, want, env.Refs(t, dst), "clone over protocol v%s", version)
		clones[version] = dst
	}

	gittest.AddCommits(t, env, src, "main", 5)
	env.Run(t, src, "push", "--quiet", url, "main")
	want = env.Refs(t, src)
	require.Equal(t, want, env.Refs(t, bare))
	for version, dst := range clones {
		env.Run(t, dst, "-c", "protocol.version="+version, "fetch", "--quiet", "origin", "+refs/*:refs/*")
		require.Equal(t, want, env.Refs(t, dst), "fetch over protocol v%s", version)
	}

	// A POST that skips info/refs is redirected too, with its body kept by 307.
	resp, err = noFollow.Post(url+"/git-receive-pack", "application/x-git-receive-pack-request", strings.NewReader("0000"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	require.Equal(t, b.url+"/tango/secret.git/git-receive-pack", resp.Header.Get("Location"))

	// Names that are not project names are refused, not routed.
	require.Equal(t, http.StatusBadRequest, putProject(t, a.url, "..%2Ftango%2Fsecret").StatusCode)

	require.Equal(t, before, listTree(t, a.root), "site a keeps nothing for a project it does not hold")
	require.Contains(t, a.log.String(), "project=tango/secret service=receive-pack status=307")
	require.NotContains(t, a.log.String(), "status=200", "site a served nothing itself")
	require.Contains(t, b.log.String(), "project=tango/secret service=receive-pack status=200")

	// Projects a holds are still served at a.
	require.Equal(t, http.StatusCreated, putProject(t, a.url, "global").StatusCode)
	env.Run(t, src, "push", "--quiet", a.url+"/global.git", "main")
	require.Equal(t, want["refs/heads/main"], env.Refs(t, filepath.Join(a.root, "global.git"))["refs/heads/main"])
}

func TestRouteWithoutTarget(t *testing.T) {
	a := startRoutedSite(t, "a")
	a.route("lost", "")
	before := listTree(t, a.root)
	resp := putProject(t, a.url, "lost")
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Contains(t, string(body), `project "lost" is not held at site a, and no site that holds it is known`)
	require.Equal(t, before, listTree(t, a.root))
}
