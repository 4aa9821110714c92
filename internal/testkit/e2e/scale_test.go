package e2e_test

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

var scaleRefs = flag.Int("scale-refs", 3000, "TestScale: refs of the Gerrit-shaped repository it imports (CI: 3000; the issue's case: 100000)")

// gerritShaped is a bare repository with about n refs shaped like a
// Gerrit project's: a few branches, and per change two patch sets and a
// meta ref (pointing at commits of a generated history), packed as git gc
// leaves them.
func gerritShaped(tb testing.TB, env *gittest.GitEnv, n int) string {
	tb.Helper()
	src := gittest.Generate(tb, env, gittest.Shape{Commits: 200, Branches: 4, Tags: 2})
	commits := strings.Fields(env.Run(tb, src, "rev-list", "--all"))
	var in strings.Builder
	for c := 1; len(commits) > 0 && c <= n/3; c++ {
		for _, leaf := range []string{"1", "2", "meta"} {
			fmt.Fprintf(&in, "create refs/changes/%02d/%d/%s %s\n", c%100, c, leaf, commits[(c*7+len(leaf))%len(commits)])
		}
	}
	env.RunInput(tb, src, []byte(in.String()), "update-ref", "--stdin")
	env.Run(tb, src, "pack-refs", "--all")
	return src
}

// TestScale (-scale-refs N, 3,000 by default): a Gerrit-shaped repository of N refs
// at one site is imported into a 3-site quorum cluster on etcd with its
// default limits; the test reports how long the import and the copies at
// the two empty sites took, each site's peak RSS, and the server time of
// one-ref pushes to it against the same pushes to a 100-ref repository.
//
//	go test ./internal/testkit/e2e -run TestScale -v -timeout 60m -scale-refs 100000
func TestScale(t *testing.T) {
	requireGit(t)
	env := gittest.Env(t)
	big := gerritShaped(t, env, *scaleRefs)
	small := gerritShaped(t, env, 100)
	want := env.Refs(t, big)
	t.Logf("generated %d refs", len(want))

	c := startCluster(t, cluster.Options{Sites: 3, Mode: "quorum", Acks: 2, Timeout: time.Minute})
	a := c.Site("a")
	const bigName, smallName = "scale/big", "scale/small"
	for name, src := range map[string]string{bigName: big, smallName: small} {
		env.Run(t, "", "clone", "--quiet", "--mirror", src, repoDir(a, name))
	}
	start := time.Now()
	out, code := runImport(t, c, a, bigName, smallName)
	require.Equal(t, 0, code, "sitesync import:\n%s", out)
	t.Logf("import: %v\n%s", time.Since(start).Round(time.Millisecond), out)
	atA, err := siteRefs(env, a, bigName)
	require.NoError(t, err)
	want["refs/sitesync/head"] = atA["refs/sitesync/head"]
	for _, s := range c.Sites()[1:] {
		require.True(t, poll(30*time.Minute, func() bool {
			got, err := siteRefs(env, s, bigName)
			return err == nil && len(got) == len(want)
		}), "site %s did not copy %s", s.Name, bigName)
		t.Logf("site %s holds all %d refs %v after the import began", s.Name, len(want), time.Since(start).Round(time.Millisecond))
	}
	waitRefs(t, env, bigName, want, c.Sites()...)
	for _, s := range c.Sites() {
		t.Logf("site %s: peak RSS %d MiB", s.Name, peakRSS(s.Pid())>>20)
	}

	// One-ref pushes, big and small repository in turn, 5 each.
	server := map[string][]time.Duration{}
	for i := range 5 {
		for name, src := range map[string]string{bigName: big, smallName: small} {
			gittest.AddCommits(t, env, src, "main", 1)
			mustPush(t, env, src, a.GitURL(name), "main")
			server[name] = append(server[name], serverTime(t, a))
			_ = i
		}
	}
	median := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[len(s)/2]
	}
	bigT, smallT := median(server[bigName]), median(server[smallName])
	t.Logf("one-ref push, server time (median of 5): %d refs %v, ~100 refs %v: %.2fx", len(want), bigT.Round(time.Millisecond), smallT.Round(time.Millisecond), float64(bigT)/float64(smallT))
}
