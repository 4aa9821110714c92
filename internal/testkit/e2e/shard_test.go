package e2e_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// placeOn is the shard rule of these tests: secret/** lives at the given
// sites only.
func placeOn(sites ...string) map[string]any {
	list := make([]any, len(sites))
	for i, s := range sites {
		list[i] = s
	}
	return map[string]any{"projects": []any{map[string]any{"match": "secret/**", "sites": list}}}
}

// noRedirect is a client that shows a 307 instead of following it.
var noRedirect = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func TestShardPlacement(t *testing.T) {
	requireGit(t)
	c := startCluster(t, cluster.Options{
		Sites: 3, Mode: "quorum", Timeout: 5 * time.Second,
		Config: func(site string, cfg map[string]any) { cfg["shard"] = placeOn("b") },
	})
	a, b, cc := c.Site("a"), c.Site("b"), c.Site("c")
	env := gittest.Env(t)
	const local = "secret/x"

	// A local project, created and pushed through a's URL: the 307s lead
	// to b, and nothing of it exists at a or c.
	createProject(t, a, local)
	src := gittest.Generate(t, env, gittest.Shape{Commits: 30, Branches: 2, Tags: 2})
	out, err := push(env, src, a.GitURL(local), "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
	require.NoError(t, err, "%s", out)
	waitRefs(t, env, local, env.Refs(t, src), b)
	fsck(t, env, b, local)
	for _, s := range []*cluster.Site{a, cc} {
		require.NoDirExists(t, filepath.Join(s.Repos, "secret"), "site %s keeps data of a project placed on b only", s.Name)
	}
	resp, err := noRedirect.Get(a.GitURL(local) + "/info/refs?service=git-upload-pack")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	require.Equal(t, b.GitURL(local)+"/info/refs?service=git-upload-pack", resp.Header.Get("Location"))

	// A global project still reaches all three.
	createProject(t, a, project)
	global := gittest.Generate(t, env, gittest.Shape{Commits: 10})
	mustPush(t, env, global, a.GitURL(project), "main")
	waitRefs(t, env, project, env.Refs(t, global), c.Sites()...)

	// The local project's quorum is its placement: acks 1 at b alone holds
	// while a and c are down.
	require.NoError(t, a.Kill())
	require.NoError(t, cc.Kill())
	gittest.AddCommits(t, env, src, "main", 2)
	start := time.Now()
	mustPush(t, env, src, b.GitURL(local), "main")
	require.Less(t, time.Since(start), 5*time.Second, "a push of a project held by b alone waited for sites that do not hold it")
	waitRefs(t, env, local, env.Refs(t, src), b)
	require.NoError(t, a.Start())
	require.NoError(t, cc.Start())
	waitReady(t, a)
	waitReady(t, cc)

	// Move the placement live: c joins. It copies the project from b, then
	// serves it itself.
	for _, s := range c.Sites() {
		before := configReloads(s)
		require.NoError(t, s.EditConfig(func(cfg map[string]any) { cfg["shard"] = placeOn("b", "c") }))
		ctx, cancel := context.WithTimeout(context.Background(), readyWait)
		require.NoError(t, s.WaitLog(ctx, "config reloaded", before+1), "site %s", s.Name)
		cancel()
	}
	waitRefs(t, env, local, env.Refs(t, src), cc)
	fsck(t, env, cc, local)
	require.True(t, poll(convergeWait, func() bool {
		resp, err := noRedirect.Get(cc.GitURL(local) + "/info/refs?service=git-upload-pack")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}), "site c never served the project placed on it:\n%s", sinceStart(cc))
	clone := filepath.Join(t.TempDir(), "clone.git")
	out, err = gitCmd(env, "", "clone", "--quiet", "--mirror", cc.GitURL(local), clone)
	require.NoError(t, err, "%s", out)
	require.Equal(t, env.Refs(t, src), env.Refs(t, clone))

	// Writes now reach both placement sites, and still never a.
	gittest.AddCommits(t, env, src, "main", 1)
	mustPush(t, env, src, cc.GitURL(local), "main")
	waitRefs(t, env, local, env.Refs(t, src), b, cc)
	_, err = os.Stat(filepath.Join(a.Repos, "secret"))
	require.True(t, os.IsNotExist(err), "site a holds data of secret/x")
}
