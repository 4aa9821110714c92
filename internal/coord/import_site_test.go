package coord_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/coord"
	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/site"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
	"github.com/sitesync/sitesync/refdb"
)

// importSource is a generated repository of shape with changes patch-set
// refs besides its branches and tags.
func importSource(tb testing.TB, e *gittest.GitEnv, shape gittest.Shape, changes int) string {
	tb.Helper()
	src := gittest.Generate(tb, e, shape)
	commits := strings.Fields(e.Run(tb, src, "rev-list", "--all"))
	var in strings.Builder
	for i := 1; i <= changes; i++ {
		fmt.Fprintf(&in, "create refs/changes/%02d/%d/1 %s\n", i%100, i, commits[i%len(commits)])
	}
	e.RunInput(tb, src, []byte(in.String()), "update-ref", "--stdin")
	return src
}

// importHTTP is POST /api/v1/projects/{name}/import at url: status, body.
func importHTTP(tb testing.TB, url, project string) (int, string) {
	tb.Helper()
	resp, err := http.Post(url+"/api/v1/projects/"+strings.ReplaceAll(project, "/", "%2F")+"/import", "", nil)
	require.NoError(tb, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// refsAt lists the refs of project at s; nil when it has no repository.
func refsAt(tb testing.TB, e *gittest.GitEnv, l *site.Local, s *site.Site, project string) map[string]string {
	tb.Helper()
	if _, err := s.Root().Existing(project); err != nil {
		return nil
	}
	return e.Refs(tb, repoDir(l, s, project))
}

// TestImport: repositories that exist at one site become replicated
// projects (sitesync import), and what is refused is refused with nothing
// changed.
func TestImport(t *testing.T) {
	l := cluster(t, site.LocalOptions{Sites: 3, Mode: "quorum", Acks: 2, Timeout: 5 * time.Second})
	e := gittest.Env(t)
	a, b, c := l.Sites[0], l.Sites[1], l.Sites[2]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("peers have nothing", func(t *testing.T) {
		const project = "imp/one"
		src := importSource(t, e, gittest.Shape{Commits: 8, Branches: 3, Tags: 2}, 40)
		want := e.Refs(t, src)
		e.Run(t, "", "clone", "--quiet", "--mirror", src, repoDir(l, a, project))

		// Catch-up notices a repository the refdb does not know.
		a.Coord().KickCatchUp()
		require.Eventually(t, func() bool { return slices.Contains(a.Coord().Unimported(), project) },
			20*time.Second, 20*time.Millisecond, "a does not list the repository as unimported")
		resp, err := http.Get(a.URL() + "/api/v1/status")
		require.NoError(t, err)
		var st struct {
			Unimported []string `json:"unimported"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
		resp.Body.Close()
		require.Contains(t, st.Unimported, project, "GET /api/v1/status")

		status, body := importHTTP(t, a.URL(), project)
		require.Equal(t, http.StatusOK, status, body)
		var res struct {
			Refs, Seeded int
			Found, Peers map[string]string
		}
		require.NoError(t, json.Unmarshal([]byte(body), &res))
		require.Equal(t, len(want), res.Refs, body)
		require.Equal(t, len(want), res.Seeded, body)
		require.Equal(t, map[string]string{"b": "copied", "c": "copied"}, res.Peers, body)
		for _, s := range []string{"b", "c"} {
			require.Contains(t, []string{"none", "empty"}, res.Found[s], body)
		}
		want = withHead(want)
		requireConverged(t, e, l, project, want)
		recs, err := a.RefDB().List(ctx, project)
		require.NoError(t, err)
		require.Len(t, recs, len(want))
		for _, r := range recs {
			require.Equal(t, want[r.Ref], r.Value, r.Ref)
			require.Equal(t, "a", r.Site, r.Ref)
		}
		require.NotContains(t, a.Coord().Unimported(), project)

		// Importing again is harmless.
		again, err := a.Coord().Import(ctx, project)
		require.NoError(t, err)
		require.Zero(t, again.Seeded)
		require.Equal(t, map[string]string{"b": "identical", "c": "identical"}, again.Found)

		// The project is replicated: a push to a peer goes through.
		gittest.AddCommits(t, e, src, "main", 1)
		e.Run(t, src, "push", "--quiet", b.URL()+"/"+project+".git", "main")
		requireConverged(t, e, l, project, withHead(e.Refs(t, src)))
	})

	t.Run("a peer holds a different copy", func(t *testing.T) {
		const project = "imp/two"
		e.Run(t, "", "clone", "--quiet", "--mirror", gittest.Generate(t, e, gittest.Shape{Commits: 4}), repoDir(l, a, project))
		e.Run(t, "", "clone", "--quiet", "--mirror", gittest.Generate(t, e, gittest.Shape{Commits: 5, Branches: 1}), repoDir(l, b, project))
		atA, atB := refsAt(t, e, l, a, project), refsAt(t, e, l, b, project)

		_, err := a.Coord().Import(ctx, project)
		require.ErrorIs(t, err, coord.ErrImportRefused)
		var ce *coord.ImportConflictError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, "b", ce.Other)
		require.Equal(t, 1, ce.Diff.Differ, "refs/heads/main differs")
		require.Equal(t, 1, ce.Diff.Extra, "b's branch is only at b")
		require.Contains(t, err.Error(), `import of "imp/two" refused: site b holds a different copy than site a: 1 ref differs, 1 ref only at site b`)
		require.Contains(t, err.Error(), "refs/heads/main: site a has "+atA["refs/heads/main"]+", site b has "+atB["refs/heads/main"])
		require.Contains(t, err.Error(), "nothing was changed")

		status, body := importHTTP(t, a.URL(), project)
		require.Equal(t, http.StatusConflict, status, body)
		require.Contains(t, body, "site b holds a different copy than site a")

		recs, err := a.RefDB().List(ctx, project)
		require.NoError(t, err)
		require.Empty(t, recs, "a refused import left records in the refdb")
		require.Equal(t, atA, refsAt(t, e, l, a, project), "a's repository changed")
		require.Equal(t, atB, refsAt(t, e, l, b, project), "b's repository changed")
		require.Empty(t, refsAt(t, e, l, c, project), "c got refs")
	})

	t.Run("a peer holds part of it", func(t *testing.T) {
		const project = "imp/three"
		src := importSource(t, e, gittest.Shape{Commits: 6, Branches: 2, Tags: 1}, 10)
		want := e.Refs(t, src)
		e.Run(t, "", "clone", "--quiet", "--mirror", src, repoDir(l, a, project))
		e.Run(t, "", "clone", "--quiet", "--mirror", src, repoDir(l, c, project))
		for _, ref := range []string{"refs/changes/01/1/1", "refs/heads/branch-1"} {
			require.Contains(t, want, ref)
			e.Run(t, repoDir(l, c, project), "update-ref", "-d", ref)
		}

		res, err := a.Coord().Import(ctx, project)
		require.NoError(t, err)
		require.Equal(t, "partial", res.Found["c"])
		require.Equal(t, "copied", res.Peers["c"])
		require.Equal(t, len(want), res.Seeded)
		requireConverged(t, e, l, project, withHead(want))
	})

	t.Run("an incomplete repository", func(t *testing.T) {
		const project = "imp/broken"
		dir := repoDir(l, a, project)
		e.Run(t, "", "clone", "--quiet", "--mirror", gittest.Generate(t, e, gittest.Shape{Commits: 3}), dir)
		lost := strings.TrimSpace(e.Run(t, dir, "commit-tree", "main^{tree}", "-p", "main", "-m", "lost"))
		e.Run(t, dir, "update-ref", "refs/heads/broken", lost)
		require.NoError(t, os.Remove(filepath.Join(dir, "objects", lost[:2], lost[2:])))

		_, err := a.Coord().Import(ctx, project)
		require.ErrorIs(t, err, coord.ErrImportRefused)
		require.Contains(t, err.Error(), `the repository of "imp/broken" at site a lacks objects its refs need`)
		require.Contains(t, err.Error(), lost)
		recs, err := a.RefDB().List(ctx, project)
		require.NoError(t, err)
		require.Empty(t, recs)
	})

	t.Run("no such repository", func(t *testing.T) {
		status, body := importHTTP(t, a.URL(), "imp/none")
		require.Equal(t, http.StatusNotFound, status, body)
	})

	// Last: the record it leaves names an object no site has.
	t.Run("the refdb holds other values", func(t *testing.T) {
		const project = "imp/four"
		src := gittest.Generate(t, e, gittest.Shape{Commits: 3})
		e.Run(t, "", "clone", "--quiet", "--mirror", src, repoDir(l, a, project))
		other := strings.Repeat("1", 40)
		_, err := a.RefDB().CAS(ctx, project, refdb.Batch{Txn: "b-test-import", Site: "b",
			Updates: []refdb.Update{{Ref: "refs/heads/main", Old: refmove.ZeroID, New: other}}})
		require.NoError(t, err)

		_, err = a.Coord().Import(ctx, project)
		require.ErrorIs(t, err, coord.ErrImportRefused)
		var ce *coord.ImportConflictError
		require.ErrorAs(t, err, &ce)
		require.Empty(t, ce.Other, "the refdb differs, not a site")
		require.Contains(t, err.Error(), "the refdb holds other values than the repository at site a: 1 ref differs (refs/heads/main: site a has "+
			e.Refs(t, src)["refs/heads/main"]+", the refdb has "+other+")")
		status, body := importHTTP(t, a.URL(), project)
		require.Equal(t, http.StatusConflict, status, body)
		recs, err := a.RefDB().List(ctx, project)
		require.NoError(t, err)
		require.Len(t, recs, 1, "the refused import wrote to the refdb")
	})
}

// withHead is want with the HEAD record an import writes for a repository
// whose HEAD is main.
func withHead(want map[string]string) map[string]string {
	out := maps.Clone(want)
	out[git.HeadRef] = gittest.HashObject("blob", git.HeadBlob("refs/heads/main"))
	return out
}
