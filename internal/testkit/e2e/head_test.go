package e2e_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// put sends PUT path with body to s and returns the status and the body.
func put(tb testing.TB, s *cluster.Site, path, body string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPut, s.URL+path, strings.NewReader(body))
	require.NoError(tb, err)
	resp, err := httpClient.Do(req)
	require.NoError(tb, err, "PUT %s", path)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// headOf is the branch HEAD of project's repository at s points at.
func headOf(s *cluster.Site, name string) string {
	b, _ := os.ReadFile(filepath.Join(repoDir(s, name), "HEAD"))
	return strings.TrimPrefix(strings.TrimSpace(string(b)), "ref: ")
}

// cloneHead clones project from s and returns the branch checked out and
// git's output.
func cloneHead(tb testing.TB, env *gittest.GitEnv, s *cluster.Site, name string) (string, string) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "clone")
	out, err := gitCmd(env, "", "clone", s.GitURL(name), dir)
	require.NoError(tb, err, "git clone from %s:\n%s", s.Name, out)
	return strings.TrimSpace(env.Run(tb, dir, "symbolic-ref", "HEAD")), out
}

// TestProjectHead: the README's first steps end in a clone that checks out
// main (projects.default_head); PUT .../head moves HEAD at every placement
// site, replicated like a ref: a site that was down points there once it
// is back; a project created with {"head":…} starts there everywhere.
// Bad HEADs are refused with 400, and clients cannot write sitesync's HEAD
// record themselves.
func TestProjectHead(t *testing.T) {
	requireGit(t)
	c := startCluster(t, cluster.Options{Sites: 3, Mode: "quorum", Acks: 2, Timeout: 5 * time.Second})
	a, b, cc := c.Site("a"), c.Site("b"), c.Site("c")
	env := gittest.Env(t)
	createProject(t, a, project)
	src := gittest.Generate(t, env, gittest.Shape{Commits: 5, Branches: 2})
	mustPush(t, env, src, a.GitURL(project), "refs/heads/*:refs/heads/*")
	want := env.Refs(t, src)
	waitRefs(t, env, project, want, c.Sites()...)
	for _, s := range c.Sites() {
		head, out := cloneHead(t, env, s, project)
		require.Equal(t, "refs/heads/main", head, "clone from %s", s.Name)
		require.NotContains(t, out, "warning", "clone from %s", s.Name)
	}

	esc := "/api/v1/projects/" + url.PathEscape(project) + "/head"
	for _, tc := range []struct{ body, want string }{
		{`{"ref":"HEAD"}`, "HEAD must name a branch"},
		{`{"ref":"refs/tags/v1"}`, "HEAD must name a branch"},
		{`{"ref":"refs/heads/a..b"}`, ".."},
		{``, "body must be"},
		{`{"ref":`, "malformed request body"},
	} {
		code, body := put(t, a, esc, tc.body)
		require.Equal(t, http.StatusBadRequest, code, "PUT head %s: %s", tc.body, body)
		require.Contains(t, body, tc.want, "PUT head %s", tc.body)
	}
	code, body := postRefs(t, a, project, apiUpdate{Ref: "refs/sitesync/head", Old: zeroID, New: want["refs/heads/main"]})
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "sitesync's own")

	// c is down while HEAD moves; a and b hold the write.
	require.NoError(t, cc.Kill())
	branch := ""
	for ref := range want {
		if ref != "refs/heads/main" {
			branch = ref
			break
		}
	}
	code, body = put(t, a, esc, `{"ref":"`+branch+`"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"acks":["a","b"]`)
	for _, s := range []*cluster.Site{a, b} {
		require.True(t, poll(convergeWait, func() bool { return headOf(s, project) == branch }), "HEAD at %s: %s", s.Name, headOf(s, project))
		head, _ := cloneHead(t, env, s, project)
		require.Equal(t, branch, head, "clone from %s", s.Name)
	}
	require.NoError(t, cc.Start())
	waitReady(t, cc)
	require.True(t, poll(convergeWait, func() bool { return headOf(cc, project) == branch }),
		"HEAD at c after its return: %s\n%s", headOf(cc, project), sinceStart(cc))
	head, _ := cloneHead(t, env, cc, project)
	require.Equal(t, branch, head, "clone from c")
	// Clients see neither the HEAD record nor anything else of sitesync's.
	out := env.Run(t, "", "ls-remote", cc.GitURL(project))
	require.NotContains(t, out, "refs/sitesync")

	// A project created with a HEAD of its own.
	const other = "tango/trunk"
	code, body = put(t, b, "/api/v1/projects/"+url.PathEscape(other), `{"head":"refs/heads/trunk"}`)
	require.Equal(t, http.StatusCreated, code, body)
	for _, s := range c.Sites() {
		require.True(t, poll(convergeWait, func() bool { return headOf(s, other) == "refs/heads/trunk" }), "HEAD of %s at %s: %q", other, s.Name, headOf(s, other))
	}
	code, body = put(t, b, "/api/v1/projects/"+url.PathEscape("tango/bad"), `{"head":"main"}`)
	require.Equal(t, http.StatusBadRequest, code, body)
}
