package e2e_test

import (
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

var corpusBundle = flag.String("corpus", "", "a git bundle of a real Gerrit repository (e.g. ../../../../shared/corpus/plugins_high-availability.bundle): TestLargePush pushes it instead of a generated repository")

// largeRefs is how many patch-set refs the generated repository of
// TestLargePush has besides its branches: well over etcd's default
// --max-txn-ops (128), so that a push of them spans several refdb
// transactions.
const largeRefs = 300

// largeSource is the repository TestLargePush mirrors: the -corpus bundle
// when given, else a generated one with largeRefs patch-set refs.
func largeSource(tb testing.TB, env *gittest.GitEnv) string {
	tb.Helper()
	if *corpusBundle != "" {
		bundle, err := filepath.Abs(*corpusBundle)
		require.NoError(tb, err)
		_, err = os.Stat(bundle)
		require.NoError(tb, err, "-corpus")
		dir := filepath.Join(tb.TempDir(), "corpus.git")
		env.Run(tb, "", "clone", "--quiet", "--mirror", bundle, dir)
		return dir
	}
	src := gittest.Generate(tb, env, gittest.Shape{Commits: 30, Branches: 8, Tags: 3})
	commits := strings.Fields(env.Run(tb, src, "rev-list", "--all"))
	var in strings.Builder
	for i := 1; i <= largeRefs; i++ {
		fmt.Fprintf(&in, "create refs/changes/%02d/%d/1 %s\n", i%100, i, commits[i%len(commits)])
	}
	env.RunInput(tb, src, []byte(in.String()), "update-ref", "--stdin")
	return src
}

// serverTime is the front door's duration of the last receive-pack request
// s logged: the server side of a push.
func serverTime(tb testing.TB, s *cluster.Site) time.Duration {
	tb.Helper()
	var last time.Duration
	for _, line := range strings.Split(s.ReadLog(), "\n") {
		if !strings.Contains(line, "git-receive-pack") {
			continue
		}
		_, rest, ok := strings.Cut(line, " duration=")
		if !ok {
			continue
		}
		d, err := time.ParseDuration(strings.Fields(rest)[0])
		if err == nil {
			last = d
		}
	}
	require.NotZero(tb, last, "no receive-pack request in the log of %s", s.Name)
	return last
}

// mirror runs git push --mirror (and extra flags) from src to url.
func mirror(env *gittest.GitEnv, src, url string, extra ...string) (string, error) {
	return gitCmd(env, src, append(append([]string{"push", "--porcelain", "--mirror"}, extra...), url)...)
}

// TestLargePush: a push of more refs than etcd takes in one transaction
// (its default --max-txn-ops, 128). Without --atomic it is decided in
// batches and every site ends with every ref; with --atomic it is refused
// up front, naming the limit and the remedy, and the refdb is untouched;
// with the servers' limit raised and refdb.max_txn_ops raised to match,
// the atomic push goes through as one transaction.
func TestLargePush(t *testing.T) {
	requireGit(t)
	env := gittest.Env(t)
	src := largeSource(t, env)
	want := env.Refs(t, src)
	t.Logf("source: %d refs", len(want))
	// Each cluster's project starts with the source's HEAD, which
	// sitesync records as refs/sitesync/head.
	head := strings.TrimSpace(env.Run(t, src, "symbolic-ref", "HEAD"))
	want["refs/sitesync/head"] = strings.TrimSpace(env.RunInput(t, src, []byte("ref: "+head+"\n"), "hash-object", "--stdin"))
	create := func(s *cluster.Site) {
		code, body := put(t, s, "/api/v1/projects/"+project, `{"head":"`+head+`"}`)
		require.Equal(t, http.StatusCreated, code, body)
	}
	checkout := func(c *cluster.Cluster) {
		for _, s := range c.Sites() {
			got, _ := cloneHead(t, env, s, project)
			require.Equal(t, head, got, "clone from %s", s.Name)
		}
	}

	// The same pushes to one site with replication off, for scale.
	t.Run("one site, replication off", func(t *testing.T) {
		c := startCluster(t, cluster.Options{Sites: 1, Refdb: "none", Mode: "async"})
		a := c.Site("a")
		create(a)
		for _, atomic := range []bool{false, true} {
			name := fmt.Sprintf("%s-%v", project, atomic)
			code, body := put(t, a, "/api/v1/projects/"+name, `{"head":"`+head+`"}`)
			require.Equal(t, http.StatusCreated, code, body)
			args := []string{}
			if atomic {
				args = append(args, "--atomic")
			}
			start := time.Now()
			out, err := mirror(env, src, a.GitURL(name), args...)
			require.NoError(t, err, "git push --mirror %v:\n%s", args, tail(out, 30))
			t.Logf("replication off, atomic %v: push of %d refs %v, server time %v", atomic, len(want)-1,
				time.Since(start).Round(time.Millisecond), serverTime(t, a).Round(time.Millisecond))
		}
	})

	t.Run("default limit", func(t *testing.T) {
		c := startCluster(t, cluster.Options{Sites: 3, Mode: "quorum", Acks: 2})
		a := c.Site("a")
		create(a)
		etcd := etcdClient(t, c)

		out, err := mirror(env, src, a.GitURL(project), "--atomic")
		require.Error(t, err, "an atomic push of %d refs with etcd's default limit:\n%s", len(want), out)
		require.Contains(t, out, "the refdb decides at most 128 refs in one transaction", out)
		require.Contains(t, out, "push without --atomic", out)
		require.Equal(t, []string{"refs/sitesync/head"}, slices.Collect(maps.Keys(refdbValues(t, etcd, project))), "a refused push left records in the refdb")

		start := time.Now()
		out, err = mirror(env, src, a.GitURL(project))
		require.NoError(t, err, "git push --mirror:\n%s", tail(out, 30))
		t.Logf("non-atomic push of %d refs: %v, server time %v", len(want)-1, time.Since(start).Round(time.Millisecond), serverTime(t, a).Round(time.Millisecond))
		waitRefs(t, env, project, want, c.Sites()...)
		t.Logf("every site holds it %v after the push began", time.Since(start).Round(time.Millisecond))
		require.True(t, maps.Equal(want, refdbValues(t, etcd, project)), "the refdb does not hold the pushed refs")
		checkout(c)
	})

	t.Run("raised limit", func(t *testing.T) {
		const limit = 20000
		c := startCluster(t, cluster.Options{
			Sites: 3, Mode: "quorum", Acks: 2,
			EtcdArgs: []string{"--max-txn-ops", fmt.Sprint(limit), "--max-request-bytes", fmt.Sprint(32 << 20)},
			Config: func(_ string, cfg map[string]any) {
				cfg["refdb"].(map[string]any)["max_txn_ops"] = limit
			},
		})
		a := c.Site("a")
		create(a)
		start := time.Now()
		out, err := mirror(env, src, a.GitURL(project), "--atomic")
		require.NoError(t, err, "git push --atomic --mirror:\n%s", tail(out, 30))
		t.Logf("atomic push of %d refs: %v, server time %v", len(want)-1, time.Since(start).Round(time.Millisecond), serverTime(t, a).Round(time.Millisecond))
		waitRefs(t, env, project, want, c.Sites()...)
		t.Logf("every site holds it %v after the push began", time.Since(start).Round(time.Millisecond))
		checkout(c)
	})
}
