package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// importChanges is how many patch-set refs the repository TestImport
// imports has besides its branches and tags: more than etcd takes in one
// transaction (its default --max-txn-ops, 128), so the refdb is seeded in
// several.
const importChanges = 200

// importSource is a generated repository with branches, tags and
// importChanges patch-set refs.
func importSource(tb testing.TB, env *gittest.GitEnv, shape gittest.Shape) string {
	tb.Helper()
	src := gittest.Generate(tb, env, shape)
	commits := strings.Fields(env.Run(tb, src, "rev-list", "--all"))
	var in strings.Builder
	for i := 1; i <= importChanges; i++ {
		fmt.Fprintf(&in, "create refs/changes/%02d/%d/1 %s\n", i%100, i, commits[i%len(commits)])
	}
	env.RunInput(tb, src, []byte(in.String()), "update-ref", "--stdin")
	return src
}

// runImport runs `sitesync import --config <s's config> args...` and
// returns its combined output and exit code.
func runImport(tb testing.TB, c *cluster.Cluster, s *cluster.Site, args ...string) (string, int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Binary(), append([]string{"import", "--config", s.ConfigPath}, args...)...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	tb.Fatalf("sitesync import: %v\n%s", err, out)
	return "", -1
}

// unimported reads the "unimported" list of s's status API.
func unimported(tb testing.TB, s *cluster.Site) []string {
	tb.Helper()
	resp, err := httpClient.Get(s.URL + "/api/v1/status")
	require.NoError(tb, err)
	defer resp.Body.Close()
	var st struct {
		Unimported []string `json:"unimported"`
	}
	require.NoError(tb, json.NewDecoder(resp.Body).Decode(&st))
	return st.Unimported
}

// TestImport: `sitesync import` makes a repository that exists at one site
// a replicated project: the refdb is seeded with its refs (in several etcd
// transactions), the other sites copy it, and it takes pushes at every
// site. Two different repositories of the same name at two sites are
// refused, naming both sites, and neither copy nor the refdb changes.
func TestImport(t *testing.T) {
	requireGit(t)
	env := gittest.Env(t)

	t.Run("peers have nothing", func(t *testing.T) {
		c := startCluster(t, cluster.Options{Sites: 3, Mode: "quorum", Acks: 2})
		a := c.Site("a")
		src := importSource(t, env, gittest.Shape{Commits: 20, Branches: 5, Tags: 3})
		want := env.Refs(t, src)
		require.Greater(t, len(want), 128)
		// A repository that existed before sitesync, copied in while the
		// site runs.
		env.Run(t, "", "clone", "--quiet", "--mirror", src, repoDir(a, project))

		start := time.Now()
		out, code := runImport(t, c, a, project)
		require.Equal(t, 0, code, "sitesync import:\n%s\n--- a's log ---\n%s", out, tail(sinceStart(a), 60))
		t.Logf("import of %d refs: %v\n%s", len(want), time.Since(start).Round(time.Millisecond), out)
		require.Contains(t, out, fmt.Sprintf("%s: imported %d refs (%d new in the refdb); b: copied", project, len(want), len(want)))
		require.Contains(t, out, "c: copied")

		// The import records HEAD as it is at a, for every site.
		atA, err := siteRefs(env, a, project)
		require.NoError(t, err)
		headRecord := atA["refs/sitesync/head"]
		require.NotEmpty(t, headRecord, "the import did not record HEAD")
		want["refs/sitesync/head"] = headRecord
		waitRefs(t, env, project, want, c.Sites()...)
		for _, s := range c.Sites() {
			require.Equal(t, "refs/heads/main", headOf(s, project), "HEAD at %s", s.Name)
		}
		etcd := etcdClient(t, c)
		require.True(t, maps.Equal(want, refdbValues(t, etcd, project)), "the refdb does not hold the imported refs")
		require.Contains(t, sinceStart(a), "seeding the refdb", "progress of a seeding of several transactions")
		require.NotContains(t, unimported(t, a), project)

		// Importing again changes nothing and says so.
		out, code = runImport(t, c, a, project)
		require.Equal(t, 0, code, out)
		require.Contains(t, out, fmt.Sprintf("imported %d refs (0 new in the refdb); b: copied (had the same refs), c: copied (had the same refs)", len(want)-1))

		// A replicated project: pushes at every site go through.
		for _, s := range c.Sites() {
			gittest.AddCommits(t, env, src, "main", 1)
			mustPush(t, env, src, s.GitURL(project), "main")
		}
		want = env.Refs(t, src)
		want["refs/sitesync/head"] = headRecord
		waitRefs(t, env, project, want, c.Sites()...)
	})

	t.Run("different copies", func(t *testing.T) {
		// a and b each start with a repository of the name, not the same
		// one (as two sites that never replicated it would).
		srcs := map[string]string{
			"a": gittest.Generate(t, env, gittest.Shape{Commits: 4, Branches: 1}),
			"b": gittest.Generate(t, env, gittest.Shape{Commits: 6, Branches: 2, Tags: 1}),
		}
		c := startCluster(t, cluster.Options{Sites: 3, Mode: "quorum", Acks: 2,
			Config: func(site string, cfg map[string]any) {
				src, ok := srcs[site]
				if !ok {
					return
				}
				repos := cfg["site"].(map[string]any)["repos"].(string)
				dir := filepath.Join(repos, project+".git")
				require.NoError(t, os.MkdirAll(filepath.Dir(dir), 0o755))
				env.Run(t, "", "clone", "--quiet", "--mirror", src, dir)
			}})
		a, b := c.Site("a"), c.Site("b")
		before := map[string]map[string]string{}
		for _, s := range []*cluster.Site{a, b} {
			refs, err := siteRefs(env, s, project)
			require.NoError(t, err)
			require.Equal(t, env.Refs(t, srcs[s.Name]), refs)
			before[s.Name] = refs
			// Each site says so at start.
			require.Contains(t, unimported(t, s), project, "site %s status", s.Name)
			require.Contains(t, sinceStart(s), `repository not known to the refdb; run \"sitesync import --config FILE PROJECT\"`)
		}

		differ, extra := 0, 0
		for ref, v := range before["b"] {
			switch w, ok := before["a"][ref]; {
			case !ok:
				extra++
			case w != v:
				differ++
			}
		}
		require.GreaterOrEqual(t, differ, 2)
		require.GreaterOrEqual(t, extra, 2)
		out, code := runImport(t, c, a, project)
		require.Equal(t, 1, code, out)
		require.Contains(t, out, project+": REFUSED: ")
		require.Contains(t, out, fmt.Sprintf("site b holds a different copy than site a: %d refs differ, %d refs only at site b (refs/heads/", differ, extra))
		require.Contains(t, out, "refs/heads/main: site a has "+before["a"]["refs/heads/main"]+", site b has "+before["b"]["refs/heads/main"])
		require.Contains(t, out, "nothing was changed")
		require.Contains(t, out, "sitesync: 1 of 1 projects not imported")

		require.Empty(t, refdbRaw(t, etcdClient(t, c), project), "a refused import left records in the refdb")
		for _, s := range []*cluster.Site{a, b} {
			refs, err := siteRefs(env, s, project)
			require.NoError(t, err)
			require.Equal(t, before[s.Name], refs, "site %s's repository changed", s.Name)
			fsck(t, env, s, project)
			require.Contains(t, unimported(t, s), project)
		}

		// Wrong use of the command: exit 2.
		out, code = runImport(t, c, a)
		require.Equal(t, 2, code, out)
		require.Contains(t, out, "name the projects to import, or give --all")
	})
}
