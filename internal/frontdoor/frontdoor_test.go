package frontdoor

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// site is a front door on loopback over a fresh repository root.
type site struct {
	url  string
	root string
}

func startSite(tb testing.TB) site {
	tb.Helper()
	root, err := git.NewRoot(tb.TempDir())
	require.NoError(tb, err)
	repos := git.NewRepos(root)
	srv := httptest.NewServer(New(Config{Site: "a", Repos: repos}))
	tb.Cleanup(func() {
		srv.Close()
		require.NoError(tb, repos.Close())
	})
	return site{url: srv.URL, root: root.Dir()}
}

func putProject(tb testing.TB, base, escapedName string) *http.Response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPut, base+"/api/v1/projects/"+escapedName, nil)
	require.NoError(tb, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	tb.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestPushCloneFetch(t *testing.T) {
	s := startSite(t)
	env := gittest.Env(t)

	resp := putProject(t, s.url, "tango%2Fcore")
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	resp = putProject(t, s.url, "tango%2Fcore")
	require.Equal(t, http.StatusOK, resp.StatusCode, "creating an existing project is not an error")

	src := gittest.Generate(t, env, gittest.Shape{Commits: 220, Branches: 4, Tags: 6})
	url := s.url + "/tango/core.git"
	env.Run(t, src, "push", "--quiet", url, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
	want := env.Refs(t, src)
	require.GreaterOrEqual(t, len(want), 10)

	bare := filepath.Join(s.root, "tango", "core.git")
	require.Equal(t, want, env.Refs(t, bare), "the site holds every pushed ref")
	env.Run(t, bare, "fsck", "--strict", "--no-dangling")

	for _, version := range []string{"0", "2"} {
		t.Run("clone/protocol="+version, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "clone.git")
			env.Run(t, "", "-c", "protocol.version="+version, "clone", "--quiet", "--mirror", url, dst)
			require.Equal(t, want, env.Refs(t, dst))
			env.Run(t, dst, "fsck", "--strict", "--no-dangling")
		})
	}

	// An incremental push, then a fetch of it into an existing clone.
	clone := filepath.Join(t.TempDir(), "clone.git")
	env.Run(t, "", "clone", "--quiet", "--mirror", url, clone)
	gittest.AddCommits(t, env, src, "main", 15)
	env.Run(t, src, "push", "--quiet", url, "main")
	env.Run(t, src, "push", "--quiet", "--delete", url, "refs/heads/branch-1")
	want = env.Refs(t, src)
	delete(want, "refs/heads/branch-1")
	env.Run(t, "", "-C", src, "branch", "-D", "branch-1")
	require.Equal(t, env.Refs(t, src), env.Refs(t, bare))
	for _, version := range []string{"0", "2"} {
		env.Run(t, clone, "-c", "protocol.version="+version, "fetch", "--quiet", "--prune", "origin", "+refs/*:refs/*")
		require.Equal(t, want, env.Refs(t, clone), "fetch over protocol v%s", version)
	}
	env.Run(t, clone, "fsck", "--strict", "--no-dangling")
}

func TestGzipProtocolV2Request(t *testing.T) {
	s := startSite(t)
	env := gittest.Env(t)
	require.Equal(t, http.StatusCreated, putProject(t, s.url, "p").StatusCode)
	src := gittest.Generate(t, env, gittest.Shape{Commits: 3, Branches: 1})
	env.Run(t, src, "push", "--quiet", s.url+"/p.git", "main")
	head := env.Refs(t, src)["refs/heads/main"]

	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	io.WriteString(zw, pktLine("command=ls-refs\n")+"0001"+pktLine("peel\n")+"0000")
	require.NoError(t, zw.Close())
	req, err := http.NewRequest(http.MethodPost, s.url+"/p.git/git-upload-pack", &body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Git-Protocol", "version=2")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	require.Contains(t, string(out), head+" refs/heads/main")
}

func TestUnknownRepository(t *testing.T) {
	s := startSite(t)
	env := gittest.Env(t)
	out, err := env.Try("", "clone", s.url+"/nope.git", filepath.Join(t.TempDir(), "x"))
	require.Error(t, err)
	require.Contains(t, out, `remote: sitesync: repository "nope" not found at site a`)
	require.Contains(t, out, "not found")
}

// TestHostileNames sends names and paths meant to escape the repository root
// or confuse git; each must get a 4xx and leave nothing on disk.
func TestHostileNames(t *testing.T) {
	s := startSite(t)
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(s.root, "link")))
	before := listTree(t, s.root)

	api := []string{
		"..", "..%2F..%2Fetc", "%2Fetc%2Fpasswd", "a%2F..%2F..%2Fb", "a%00b", "a%0Ab", "a%5Cb",
		".hidden", "-u", "x.git", "a%2F%2Fb", "link%2Fx", "a%2F", "%2E%2E",
		strings.Repeat("a", 300), "a:b",
	}
	for _, name := range api {
		t.Run("api/"+name[:min(len(name), 20)], func(t *testing.T) {
			resp := putProject(t, s.url, name)
			body, _ := io.ReadAll(resp.Body)
			require.GreaterOrEqual(t, resp.StatusCode, 400, "%s: %s", name, body)
			require.Less(t, resp.StatusCode, 500, "%s: %s", name, body)
		})
	}

	// Raw request lines, sent as written: net/http's client would clean them.
	paths := []string{
		"GET /../../etc/info/refs?service=git-upload-pack",
		"GET /a/../../x.git/info/refs?service=git-upload-pack",
		"GET /link/x.git/info/refs?service=git-receive-pack",
		"GET /%2e%2e/x.git/info/refs?service=git-upload-pack",
		"GET //etc/x.git/info/refs?service=git-upload-pack",
		"GET /p.git/info/refs?service=git-evil",
		"GET /p.git/info/refs",
		"GET /p.git/HEAD",
		"GET /p.git/objects/info/packs",
		"GET /p.git/git-upload-pack",
		"POST /p.git/info/refs?service=git-upload-pack",
		"POST /a%00b.git/git-receive-pack",
		"POST /a%5Cb.git/git-receive-pack",
		"POST /-x.git/git-upload-pack",
		"GET /api/v1/projects/..%2Fx",
		"DELETE /api/v1/projects/p",
		"PUT /api/v1/projects/bad%zz",
		"PUT /api/v1/projects/a%2F..%2F..%2Fb",
	}
	for _, line := range paths {
		t.Run("raw/"+line, func(t *testing.T) {
			status := rawRequest(t, s.url, line)
			require.GreaterOrEqual(t, status, 400, line)
			require.Less(t, status, 500, line)
		})
	}
	require.Equal(t, before, listTree(t, s.root), "nothing was created under the root")
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing was created outside the root")
}

func rawRequest(tb testing.TB, base, line string) int {
	tb.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(tb, err)
	defer conn.Close()
	fmt.Fprintf(conn, "%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", line)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(tb, err)
	defer resp.Body.Close()
	return resp.StatusCode
}

func listTree(tb testing.TB, dir string) []string {
	tb.Helper()
	var all []string
	require.NoError(tb, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		all = append(all, p)
		return err
	}))
	return all
}

func TestMain(m *testing.M) {
	if _, err := exec.LookPath("git"); err != nil {
		fmt.Fprintln(os.Stderr, "these tests need the C git client on PATH")
		os.Exit(1)
	}
	os.Exit(m.Run())
}
