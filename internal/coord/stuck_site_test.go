package coord_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/coord"
	"github.com/sitesync/sitesync/internal/site"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
	"github.com/sitesync/sitesync/internal/testkit/sitetest"
)

// getJSON reads url into v and returns the status.
func getJSON(tb testing.TB, url string, v any) int {
	tb.Helper()
	resp, err := http.Get(url)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	if v != nil {
		require.NoError(tb, json.Unmarshal(b, v), string(b))
	}
	return resp.StatusCode
}

// readyz is a site's /readyz: status and body.
func readyz(tb testing.TB, url string) (int, string) {
	tb.Helper()
	resp, err := http.Get(url + "/readyz")
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type statusBody struct {
	Queues struct{ Outbound, Prepared int }
	Parked []struct {
		Project, Ref, Value, Reason string
		Version                     uint64
	}
}

// TestPeerVotesMissingDuringTee: with b unable to take any pack (its object
// store replaced by a file), a push at a is teed to b and c; b votes
// "missing", a ships b a pack from the repository, which fails too, while
// c's vote reads the same write: the data race of issue #14 (prepareAt
// cleared the write's tee while other votes read it) shows under -race.
// The push is acknowledged by a and c; once b's store is back, b converges.
func TestPeerVotesMissingDuringTee(t *testing.T) {
	l := cluster(t, site.LocalOptions{Sites: 3, Mode: "quorum", Acks: 2, Timeout: 5 * time.Second})
	e := gittest.Env(t)
	a, b := l.Sites[0], l.Sites[1]
	const project = "tee/race"
	sitetest.CreateProject(t, a.URL(), project)
	src := gittest.Generate(t, e, gittest.Shape{Commits: 20, Branches: 1})
	e.Run(t, src, "push", a.URL()+"/"+project+".git", "refs/heads/*:refs/heads/*")
	requireConverged(t, e, l, project, e.Refs(t, src))

	objects := filepath.Join(repoDir(l, b, project), "objects")
	require.NoError(t, os.Rename(objects, objects+".away"))
	require.NoError(t, os.WriteFile(objects, []byte("not a directory\n"), 0o644))

	gittest.AddCommits(t, e, src, "main", 3)
	out := e.Run(t, src, "push", a.URL()+"/"+project+".git", "main")
	t.Logf("push with b broken: %s", strings.TrimSpace(out))

	require.NoError(t, os.Remove(objects))
	require.NoError(t, os.Rename(objects+".away", objects))
	requireConverged(t, e, l, project, e.Refs(t, src))
}

// TestForeignLockIsParked: a ref lock at b that no sitesync git process
// holds (a crashed foreign git left it) stops b from applying the ref. The
// other refs of the same write and of later writes still move at b; the
// stuck ref is listed in b's status with git's reason after parkAfter,
// /readyz answers 503 naming it, and once the lock is gone b converges by
// itself and is ready again.
func TestForeignLockIsParked(t *testing.T) {
	l := cluster(t, site.LocalOptions{Sites: 3, Mode: "quorum", Acks: 2, Timeout: 5 * time.Second})
	e := gittest.Env(t)
	a, b := l.Sites[0], l.Sites[1]
	const project = "stuck/lock"
	sitetest.CreateProject(t, a.URL(), project)
	src := gittest.Generate(t, e, gittest.Shape{Commits: 10, Branches: 2})
	e.Run(t, src, "push", a.URL()+"/"+project+".git", "refs/heads/*:refs/heads/*")
	requireConverged(t, e, l, project, e.Refs(t, src))

	lock := filepath.Join(repoDir(l, b, project), "refs", "heads", "main.lock")
	require.NoError(t, os.WriteFile(lock, nil, 0o644))
	gittest.AddCommits(t, e, src, "main", 1)
	gittest.AddCommits(t, e, src, "branch-1", 1)
	e.Run(t, src, "push", a.URL()+"/"+project+".git", "main", "branch-1")
	want := e.Refs(t, src)

	// branch-1 moves at b although main cannot.
	deadline := time.Now().Add(30 * time.Second)
	for e.Refs(t, repoDir(l, b, project))["refs/heads/branch-1"] != want["refs/heads/branch-1"] {
		require.True(t, time.Now().Before(deadline), "branch-1 never moved at b while main's lock is held")
		time.Sleep(50 * time.Millisecond)
	}

	var st statusBody
	deadline = time.Now().Add(time.Minute)
	for {
		require.Equal(t, http.StatusOK, getJSON(t, b.URL()+"/api/v1/status", &st))
		if len(st.Parked) > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the stuck ref was never reported parked")
		time.Sleep(200 * time.Millisecond)
	}
	require.Len(t, st.Parked, 1)
	p := st.Parked[0]
	require.Equal(t, "refs/heads/main", p.Ref)
	require.Equal(t, project, p.Project)
	require.Equal(t, want["refs/heads/main"], p.Value)
	require.Contains(t, p.Reason, "main.lock", "the reason is git's")
	code, body := readyz(t, b.URL())
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, "refs/heads/main")
	code, _ = readyz(t, a.URL())
	require.Equal(t, http.StatusOK, code, "a holds everything")

	require.NoError(t, os.Remove(lock))
	requireConverged(t, e, l, project, want)
	deadline = time.Now().Add(90 * time.Second)
	for {
		code, body = readyz(t, b.URL())
		if code == http.StatusOK {
			break
		}
		require.True(t, time.Now().Before(deadline), "b never became ready again: %s", body)
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, http.StatusOK, getJSON(t, b.URL()+"/api/v1/status", &st))
	require.Empty(t, st.Parked)
}

// TestWriteAPIRefusesWhatNoSiteCouldApply: writes through the API that a
// site could not apply are refused with 400 saying what and why, before
// any site or the refdb hears of them: HEAD and other names outside refs/,
// names git refuses, a branch to a blob or a tree, an object that is not
// there, a ref that is a directory of an existing one. Afterwards nothing
// is queued, no site holds any of them, and a proper write of the same ref
// is taken as a creation (the refdb never held it).
func TestWriteAPIRefusesWhatNoSiteCouldApply(t *testing.T) {
	l := cluster(t, site.LocalOptions{Sites: 3, Mode: "quorum", Acks: 2})
	e := gittest.Env(t)
	a := l.Sites[0]
	const project = "refuse/api"
	sitetest.CreateProject(t, a.URL(), project)
	src := gittest.Generate(t, e, gittest.Shape{Commits: 5, Branches: 1})
	e.Run(t, src, "push", a.URL()+"/"+project+".git", "refs/heads/*:refs/heads/*")
	want := e.Refs(t, src)
	requireConverged(t, e, l, project, want)
	dir := repoDir(l, a, project)
	main := want["refs/heads/main"]
	blob := strings.TrimSpace(e.RunInput(t, dir, []byte("a blob\n"), "hash-object", "-w", "--stdin"))
	tree := strings.TrimSpace(e.Run(t, dir, "rev-parse", main+"^{tree}"))
	missing := strings.Repeat("1", 40)

	for _, tc := range []struct {
		name, ref, value, want string
	}{
		{"HEAD", "HEAD", main, `"HEAD" is not a ref under refs/`},
		{"not under refs", "heads/x", main, `"heads/x" is not a ref under refs/`},
		{"two dots", "refs/heads/a..b", main, "contains '..'"},
		{"lock suffix", "refs/heads/x.lock", main, ".lock"},
		{"control character", "refs/heads/bell\a", main, "control character"},
		{"branch to a blob", "refs/heads/blob", blob, "refs/heads/blob is a branch and can only point at a commit; " + blob + " is a blob"},
		{"branch to a tree", "refs/heads/tree", tree, "is a tree"},
		{"missing object", "refs/tags/missing", missing, "object " + missing + " for refs/tags/missing is not in this site's repository"},
		{"below an existing ref", "refs/heads/main/x", main, "git refuses it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, a.URL(), project, []coord.Update{{Ref: tc.ref, Old: zeroID, New: tc.value}})
			require.Equal(t, http.StatusBadRequest, code, body)
			var msg struct{ Error string }
			require.NoError(t, json.Unmarshal([]byte(body), &msg), body)
			require.Contains(t, msg.Error, tc.want)
			t.Logf("%s: %s", tc.name, msg.Error)
		})
	}
	var st statusBody
	for _, s := range l.Sites {
		require.Equal(t, http.StatusOK, getJSON(t, s.URL()+"/api/v1/status", &st))
		require.Zero(t, st.Queues.Outbound, "site %s", s.Name())
		require.Zero(t, st.Queues.Prepared, "site %s", s.Name())
		require.Equal(t, want, e.Refs(t, repoDir(l, s, project)), "site %s", s.Name())
	}
	// The refdb never held them: a creation of the same name is taken.
	code, body := post(t, a.URL(), project, []coord.Update{{Ref: "refs/tags/missing", Old: zeroID, New: blob}})
	require.Equal(t, http.StatusOK, code, body)
	want["refs/tags/missing"] = blob
	requireConverged(t, e, l, project, want)
}
