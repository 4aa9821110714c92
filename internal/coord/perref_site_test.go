package coord_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/site"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
	"github.com/sitesync/sitesync/internal/testkit/sitetest"
	"github.com/sitesync/sitesync/refdb"
)

// porcelain is git push --porcelain's verdict per ref: "<flag>\t<from>:<to>\t<summary>".
func porcelain(out string) map[string]string {
	v := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			continue
		}
		_, to, ok := strings.Cut(f[1], ":")
		if ok && strings.HasPrefix(to, "refs/") {
			v[to] = f[0] + " " + f[2]
		}
	}
	return v
}

// TestNonAtomicPushDecidesEachRef: the refdb holds a ref written at b
// which site a has not applied yet. An atomic push at a of x and that ref
// is refused whole, saying why (updated at site b; fetch and retry), and a
// then catches up with the ref so that the fetch sees it. A non-atomic
// push gets git's per-ref verdicts: x is accepted and replicated, the
// other ref rejected with the reason, and a catches up with it.
func TestNonAtomicPushDecidesEachRef(t *testing.T) {
	l := cluster(t, site.LocalOptions{Sites: 3, Mode: "quorum", Acks: 2, Timeout: 5 * time.Second})
	e := gittest.Env(t)
	a := l.Sites[0]
	const project = "perref/push"
	sitetest.CreateProject(t, a.URL(), project)
	src := gittest.Generate(t, e, gittest.Shape{Commits: 3})
	url := a.URL() + "/" + project + ".git"
	e.Run(t, src, "push", url, "main")
	base := e.Refs(t, src)["refs/heads/main"]
	requireConverged(t, e, l, project, map[string]string{"refs/heads/main": base})

	// What b would have written, before a heard of it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	writtenAtB := func(ref string) {
		_, err := a.RefDB().CAS(ctx, project, refdb.Batch{Txn: "b-test-" + ref, Site: "b",
			Updates: []refdb.Update{{Ref: ref, Old: refmove.ZeroID, New: base}}})
		require.NoError(t, err)
	}
	gittest.AddCommits(t, e, src, "main", 1)
	next := e.Refs(t, src)["refs/heads/main"]

	writtenAtB("refs/heads/y")
	out, err := e.Try(src, "push", "--porcelain", "--atomic", url, "main:refs/heads/x", "main:refs/heads/y")
	require.Error(t, err, "an atomic push with a ref the refdb holds otherwise:\n%s", out)
	v := porcelain(out)
	require.True(t, strings.HasPrefix(v["refs/heads/x"], "!"), "atomic: x was not refused:\n%s", out)
	require.Contains(t, out, "refs/heads/y was updated at site b; fetch and retry")
	// The user is told to fetch: a has what the refdb holds by then.
	require.Eventually(t, func() bool { return e.Refs(t, repoDir(l, a, project))["refs/heads/y"] == base },
		10*time.Second, 50*time.Millisecond, "a did not catch up with the ref its push lost")

	writtenAtB("refs/heads/z")
	out, err = e.Try(src, "push", "--porcelain", url, "main:refs/heads/x", "main:refs/heads/z")
	require.Error(t, err, "a non-atomic push with one ref the refdb holds otherwise:\n%s", out)
	v = porcelain(out)
	require.True(t, strings.HasPrefix(v["refs/heads/x"], "*"), "x was not created:\n%s", out)
	require.True(t, strings.HasPrefix(v["refs/heads/z"], "!"), "z was not rejected:\n%s", out)
	require.Contains(t, out, "refs/heads/z was updated at site b; fetch and retry")

	recs, err := a.RefDB().Get(ctx, project, "refs/heads/x", "refs/heads/z")
	require.NoError(t, err)
	require.Equal(t, next, recs[0].Value, "the refdb does not hold x as pushed")
	require.Equal(t, base, recs[1].Value, "the refdb's z moved")
	// x reaches every site; y and z were never at b and c (the test wrote
	// them to the refdb alone), a caught up with them.
	for _, s := range l.Sites {
		require.Eventually(t, func() bool { return e.Refs(t, repoDir(l, s, project))["refs/heads/x"] == next },
			30*time.Second, 50*time.Millisecond, "x did not reach site %s", s.Name())
	}
	require.Eventually(t, func() bool { return e.Refs(t, repoDir(l, a, project))["refs/heads/z"] == base },
		10*time.Second, 50*time.Millisecond, "a did not catch up with the ref its push lost")
}

// TestLargePushEmbedded: a mirror push of the -corpus bundle (e.g.
// -corpus /work/shared/corpus/plugins_high-availability.bundle; without it
// a generated repository of ~210 refs) to a
// 3-site quorum cluster on the embedded refdb (the TiKV client's own
// store), non-atomic and atomic: exit 0, every site identical and fsck
// clean, HEAD checked out by a clone from each site.
func TestLargePushEmbedded(t *testing.T) {
	e := gittest.Env(t)
	src := filepath.Join(t.TempDir(), "corpus.git")
	if corpus := flag.Lookup("corpus").Value.String(); corpus != "" { // wire_test.go's flag
		e.Run(t, "", "clone", "--quiet", "--mirror", corpus, src)
	} else {
		// Without -corpus: a generated repository, HEAD at master, with
		// more refs than one etcd transaction takes.
		gen := gittest.Generate(t, e, gittest.Shape{Commits: 20, Branches: 3})
		e.Run(t, "", "clone", "--quiet", "--mirror", gen, src)
		e.Run(t, src, "branch", "-m", "main", "master")
		commits := strings.Fields(e.Run(t, src, "rev-list", "--all"))
		var in strings.Builder
		for i := 1; i <= 200; i++ {
			fmt.Fprintf(&in, "create refs/changes/%02d/%d/1 %s\n", i%100, i, commits[i%len(commits)])
		}
		e.RunInput(t, src, []byte(in.String()), "update-ref", "--stdin")
	}
	want := e.Refs(t, src)
	// The project is created with the corpus's HEAD, which sitesync
	// records as refs/sitesync/head.
	want[git.HeadRef] = gittest.HashObject("blob", git.HeadBlob("refs/heads/master"))
	for _, atomic := range []bool{false, true} {
		t.Run(fmt.Sprintf("atomic=%v", atomic), func(t *testing.T) {
			l := cluster(t, site.LocalOptions{Sites: 3, Mode: "quorum", Acks: 2, Timeout: time.Minute})
			a := l.Sites[0]
			const project = "corpus/ha"
			req, err := http.NewRequest(http.MethodPut, a.URL()+"/api/v1/projects/"+project, strings.NewReader(`{"head":"refs/heads/master"}`))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusCreated, resp.StatusCode)
			args := []string{"push", "--porcelain", "--mirror"}
			if atomic {
				args = append(args, "--atomic")
			}
			start := time.Now()
			out, err := e.Try(src, append(args, a.URL()+"/"+project+".git")...)
			require.NoError(t, err, "git %v:\n%s", args, out)
			t.Logf("push of %d refs (atomic %v): %v", len(want)-1, atomic, time.Since(start).Round(time.Millisecond))
			requireConverged(t, e, l, project, want)
			t.Logf("every site holds it after %v", time.Since(start).Round(time.Millisecond))
			for _, s := range l.Sites {
				dir := filepath.Join(t.TempDir(), "clone-"+s.Name())
				e.Run(t, "", "clone", "--quiet", s.URL()+"/"+project+".git", dir)
				require.Equal(t, "refs/heads/master", strings.TrimSpace(e.Run(t, dir, "symbolic-ref", "HEAD")), "clone from %s", s.Name())
			}
		})
	}
}
