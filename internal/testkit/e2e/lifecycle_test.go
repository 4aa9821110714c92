package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// request sends method path (body may be "") to s and returns the status
// and the body.
func request(tb testing.TB, s *cluster.Site, method, path string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	require.NoError(tb, err)
	resp, err := httpClient.Do(req)
	require.NoError(tb, err, "%s %s", method, path)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type projectInfo struct {
	Name      string   `json:"name"`
	Placement []string `json:"placement"`
	Head      string   `json:"head"`
}

// TestProjectLifecycle: a project is created, listed, read and deleted
// through the API, its name given with its slash escaped or not; a delete
// is refused while a write is in flight; a site that is down during the
// delete removes the project when it is back; the name can then be used
// again, and the new project replicates as any other.
func TestProjectLifecycle(t *testing.T) {
	requireGit(t)
	c := startCluster(t, cluster.Options{Sites: 3, Mode: "quorum", Acks: 2, Timeout: 5 * time.Second})
	a, b, cc := c.Site("a"), c.Site("b"), c.Site("c")
	env := gittest.Env(t)

	code, body := put(t, a, "/api/v1/projects/"+project, "") // "tango/core", slash as it is
	require.Equal(t, http.StatusCreated, code, body)
	for _, s := range c.Sites() {
		require.True(t, poll(convergeWait, func() bool {
			code, body := request(t, s, http.MethodGet, "/api/v1/projects")
			var list struct {
				Projects []projectInfo `json:"projects"`
			}
			return code == http.StatusOK && json.Unmarshal([]byte(body), &list) == nil &&
				len(list.Projects) == 1 && list.Projects[0].Name == project
		}), "GET /api/v1/projects at %s", s.Name)
		for _, path := range []string{"/api/v1/projects/tango%2Fcore", "/api/v1/projects/tango/core"} {
			code, body := request(t, s, http.MethodGet, path)
			require.Equal(t, http.StatusOK, code, "GET %s at %s: %s", path, s.Name, body)
			var info projectInfo
			require.NoError(t, json.Unmarshal([]byte(body), &info), body)
			require.Equal(t, projectInfo{Name: project, Placement: []string{"a", "b", "c"}, Head: "refs/heads/main"}, info)
		}
	}
	code, body = request(t, a, http.MethodGet, "/api/v1/projects/tango%2Fnone")
	require.Equal(t, http.StatusNotFound, code, body)
	code, body = request(t, a, http.MethodDelete, "/api/v1/projects/tango/none")
	require.Equal(t, http.StatusNotFound, code, body)

	src := gittest.Generate(t, env, gittest.Shape{Commits: 5, Branches: 3})
	mustPush(t, env, src, a.GitURL(project), "refs/heads/*:refs/heads/*")
	waitRefs(t, env, project, env.Refs(t, src), c.Sites()...)

	// A push waiting for its quorum (b and c down) is in flight: the
	// delete is refused.
	require.NoError(t, b.Kill())
	require.NoError(t, cc.Kill())
	gittest.AddCommits(t, env, src, "main", 1)
	client := startGit(t, env, src, "push", a.GitURL(project), "main")
	time.Sleep(2 * time.Second) // the push waits up to 5 s for its quorum
	require.False(t, client.exited(), "the push did not wait for its quorum")
	code, body = request(t, a, http.MethodDelete, "/api/v1/projects/"+project)
	require.Equal(t, http.StatusConflict, code, body)
	require.Contains(t, body, "writes in progress")
	_, _ = client.wait()
	require.NoError(t, b.Start())
	waitReady(t, b)

	// c is down during the delete.
	code, body = request(t, a, http.MethodDelete, "/api/v1/projects/"+project)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"pending":["c"]`)
	for _, s := range []*cluster.Site{a, b} {
		require.True(t, poll(convergeWait, func() bool { return !exists(repoDir(s, project)) }), "the repository is still at %s", s.Name)
		code, body := request(t, s, http.MethodGet, "/api/v1/projects/"+project)
		require.Equal(t, http.StatusNotFound, code, "GET at %s after the delete: %s", s.Name, body)
	}
	require.NoError(t, cc.Start())
	waitReady(t, cc)
	require.True(t, poll(convergeWait, func() bool { return !exists(repoDir(cc, project)) }),
		"c kept the deleted project after its return:\n%s", sinceStart(cc))

	// The name again: a new project, replicated everywhere.
	code, body = put(t, b, "/api/v1/projects/"+project, "")
	require.Equal(t, http.StatusCreated, code, body)
	fresh := gittest.Generate(t, env, gittest.Shape{Commits: 2})
	mustPush(t, env, fresh, b.GitURL(project), "main")
	want := env.Refs(t, fresh)
	// The name's HEAD record, made live again by the create.
	atB, err := siteRefs(env, b, project)
	require.NoError(t, err)
	require.NotEmpty(t, atB["refs/sitesync/head"], "no HEAD record after the project was created again")
	want["refs/sitesync/head"] = atB["refs/sitesync/head"]
	waitRefs(t, env, project, want, c.Sites()...)
	// ... and it stays: no site's catch-up takes it for the deleted one.
	time.Sleep(3 * time.Second)
	for _, s := range c.Sites() {
		require.True(t, exists(repoDir(s, project)), "the new project vanished at %s", s.Name)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
