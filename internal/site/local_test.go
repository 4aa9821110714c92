package site_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/hook"
	"github.com/sitesync/sitesync/internal/site"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
	"github.com/sitesync/sitesync/internal/testkit/sitetest"
)

func TestMain(m *testing.M) { sitetest.HookMain(m) }

func startLocal(tb testing.TB, opts site.LocalOptions) *site.Local {
	tb.Helper()
	return sitetest.Start(tb, opts, slog.LevelDebug)
}

// requireSameRefs waits until every site has exactly want, then checks
// each repository with git fsck.
func requireSameRefs(tb testing.TB, e *gittest.GitEnv, l *site.Local, project string, want map[string]string) {
	tb.Helper()
	for _, s := range l.Sites {
		dir := filepath.Join(s.Root().Dir(), project+".git")
		var got map[string]string
		ok := assertEventually(func() bool {
			got = e.Refs(tb, dir)
			return fmt.Sprint(got) == fmt.Sprint(want)
		}, 20*time.Second)
		require.True(tb, ok, "site %s refs:\n got %v\nwant %v", s.Name(), got, want)
		e.Run(tb, dir, "fsck", "--strict", "--no-dangling")
	}
}

func assertEventually(f func() bool, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if f() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f()
}

func TestLocalPushReplicates(t *testing.T) {
	for _, mode := range []string{"async", "quorum", "sync"} {
		t.Run("mode="+mode, func(t *testing.T) {
			l := startLocal(t, site.LocalOptions{Sites: 3, Mode: mode})
			e := gittest.Env(t)
			a := l.Sites[0]
			sitetest.CreateProject(t, a.URL(), "tango/core")
			for _, s := range l.Sites {
				_, err := os.Stat(filepath.Join(s.Root().Dir(), "tango/core.git", "HEAD"))
				require.NoError(t, err, "site %s has no repository", s.Name())
			}
			// HEAD names the branch pushed: git's hook input then has HEAD
			// moving along with it.
			for _, s := range l.Sites {
				e.Run(t, filepath.Join(s.Root().Dir(), "tango/core.git"), "symbolic-ref", "HEAD", "refs/heads/main")
			}
			src := gittest.Generate(t, e, gittest.Shape{Commits: 60, Branches: 3, Tags: 4})
			e.Run(t, src, "push", "--quiet", a.URL()+"/tango/core.git", "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
			requireSameRefs(t, e, l, "tango/core", e.Refs(t, src))

			gittest.AddCommits(t, e, src, "main", 5)
			e.Run(t, src, "push", "--quiet", a.URL()+"/tango/core.git", "main", ":refs/heads/branch-1")
			e.Run(t, src, "update-ref", "-d", "refs/heads/branch-1")
			requireSameRefs(t, e, l, "tango/core", e.Refs(t, src))
		})
	}
}

func TestLocalWriteAPI(t *testing.T) {
	l := startLocal(t, site.LocalOptions{Sites: 3, Mode: "quorum"})
	e := gittest.Env(t)
	a, b := l.Sites[0], l.Sites[1]
	sitetest.CreateProject(t, a.URL(), "p")
	src := gittest.Generate(t, e, gittest.Shape{Commits: 5})
	e.Run(t, src, "push", "--quiet", a.URL()+"/p.git", "main")
	main := strings.TrimSpace(e.Run(t, src, "rev-parse", "main"))

	// A ref written at a through the API, whose objects a already holds.
	body := fmt.Sprintf(`{"updates":[{"ref":"refs/heads/api","old":"%s","new":"%s"}]}`, strings.Repeat("0", 40), main)
	resp, err := http.Post(a.URL()+"/api/v1/projects/p/refs", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	var res struct {
		Txn  string   `json:"txn"`
		Acks []string `json:"acks"`
	}
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&res))
	resp.Body.Close()
	require.GreaterOrEqual(t, len(res.Acks), 2)

	// Read-your-writes at b.
	resp, err = http.Get(b.URL() + "/api/v1/projects/p/refs/refs%2Fheads%2Fapi?until=" + main + "&timeout=10s")
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(got))
	require.Contains(t, string(got), main)

	// The same create again conflicts, and says who wrote the ref.
	resp, err = http.Post(b.URL()+"/api/v1/projects/p/refs", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusConflict, resp.StatusCode, string(got))
	require.Contains(t, string(got), "refs/heads/api was updated at site a")
}

// TestInstalledHooks: writes that bypass the front door — a push served by
// another git server (here git's own file transport) and an admin's
// update-ref — reach every site through the installed hooks.
func TestInstalledHooks(t *testing.T) {
	l := startLocal(t, site.LocalOptions{Sites: 3, Mode: "quorum"})
	e := gittest.Env(t)
	a := l.Sites[0]
	sitetest.CreateProject(t, a.URL(), "other/server")
	dir := filepath.Join(a.Root().Dir(), "other/server.git")
	projects, err := hook.Install(context.Background(), a.Root(), filepath.Join(a.State(), "hooks"))
	require.NoError(t, err)
	require.Equal(t, []string{"other/server"}, projects)

	src := gittest.Generate(t, e, gittest.Shape{Commits: 20, Branches: 2})
	e.Run(t, src, "push", "--quiet", "file://"+dir, "refs/heads/*:refs/heads/*")
	requireSameRefs(t, e, l, "other/server", e.Refs(t, src))

	main := strings.TrimSpace(e.Run(t, dir, "rev-parse", "main~3"))
	e.Run(t, dir, "update-ref", "refs/heads/admin", main)
	want := e.Refs(t, src)
	want["refs/heads/admin"] = main
	requireSameRefs(t, e, l, "other/server", want)

	// A write sitesync refuses fails locally too, with sitesync's reason,
	// and the ref stays put: patch-set refs are create-only.
	e.Run(t, dir, "update-ref", "refs/changes/01/1/1", main)
	want["refs/changes/01/1/1"] = main
	requireSameRefs(t, e, l, "other/server", want)
	other := strings.TrimSpace(e.Run(t, dir, "rev-parse", "main"))
	out, err := e.Try(dir, "update-ref", "refs/changes/01/1/1", other, main)
	require.Error(t, err)
	require.Contains(t, out, "sitesync: rejected: refs/changes/01/1/1 is a patch-set ref and cannot be changed once created")
	requireSameRefs(t, e, l, "other/server", want)
}
