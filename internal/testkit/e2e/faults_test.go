package e2e_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// replTimeout is replication.timeout in the fault tests: short, so a
// refused write is quick, long enough for a vote on a loaded machine.
const replTimeout = 3 * time.Second

// refusalMargin is what a refused push may take beyond replTimeout: the git
// client's own round trips, receive-pack, the abort, on a loaded machine.
const refusalMargin = 5 * time.Second

// TestQuorumSiteDown: quorum 2 of 3 keeps taking pushes with c SIGKILLed;
// switched live to sync, a push is refused with the quorum message within
// the timeout and leaves no trace at a or b; c restarts and catches up to
// every acknowledged write.
func TestQuorumSiteDown(t *testing.T) {
	requireGit(t)
	c := startCluster(t, cluster.Options{Sites: 3, Mode: "quorum", Acks: 2, Timeout: replTimeout})
	a, b, cc := c.Site("a"), c.Site("b"), c.Site("c")
	env := gittest.Env(t)
	createProject(t, a, project)
	src := gittest.Generate(t, env, gittest.Shape{Commits: 30, Branches: 2, Tags: 2})
	url := a.GitURL(project)
	mustPush(t, env, src, url, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
	waitRefs(t, env, project, env.Refs(t, src), c.Sites()...)

	require.NoError(t, cc.Kill())

	// Quorum holds with a and b: these pushes are acknowledged.
	gittest.AddCommits(t, env, src, "main", 2)
	mustPush(t, env, src, url, "main")
	gittest.AddCommits(t, env, src, "branch-2", 1)
	env.Run(t, src, "tag", "-a", "-m", "while c is down", "v-down", "main")
	mustPush(t, env, src, url, "branch-2", "v-down", ":refs/heads/branch-1")
	env.Run(t, src, "update-ref", "-d", "refs/heads/branch-1")
	acked := env.Refs(t, src)
	waitRefs(t, env, project, acked, a, b)

	// The origin's status shows c behind by the two acknowledged pushes,
	// and b, which holds them, behind by nothing.
	var writes map[string]int
	var oldest map[string]float64
	var peersBehind int
	require.True(t, poll(10*time.Second, func() bool {
		writes, oldest, peersBehind = behind(t, a)
		return writes["b"] == 0
	}), "b is still behind a: %v", writes)
	require.Equal(t, 2, writes["c"], "transactions (pushes) a has not told c of")
	require.Greater(t, oldest["c"], 0.0)
	require.Equal(t, 1, peersBehind)

	// Sync needs c, which is down: the push is refused, in time.
	setMode(t, c, "sync")
	ackedMain := acked["refs/heads/main"]
	gittest.AddCommits(t, env, src, "main", 1)
	refused := revParse(t, env, src, "main")
	start := time.Now()
	out, err := push(env, src, url, "main")
	elapsed := time.Since(start)
	require.Error(t, err, "push in sync mode with c down was accepted:\n%s", out)
	// The user is told why (checked without stopping the test, so the
	// invariants below are checked whatever the message).
	assert.Contains(t, out, "sitesync: rejected: quorum not reached", "git output:\n%s", out)
	assert.Contains(t, out, "site c", "the message names the missing site:\n%s", out)
	require.LessOrEqual(t, elapsed, replTimeout+refusalMargin, "refusal took %v:\n%s", elapsed, out)
	t.Logf("refused push: %v (timeout %v); git says:\n%s", elapsed.Round(time.Millisecond), replTimeout, out)

	// Nothing of it anywhere: no ref moved, no quarantine left.
	for _, s := range []*cluster.Site{a, b} {
		var left []string
		ok := poll(20*time.Second, func() bool {
			left = quarantines(s, project)
			return len(left) == 0
		})
		require.True(t, ok, "site %s keeps quarantines of the refused push: %v", s.Name, left)
		refs, err := siteRefs(env, s, project)
		require.NoError(t, err)
		require.Equal(t, ackedMain, refs["refs/heads/main"], "site %s shows a value the refdb never took", s.Name)
		require.NotContains(t, refs, refused)
		for ref, v := range refs {
			require.NotEqual(t, refused, v, "site %s: %s has the refused value", s.Name, ref)
		}
		code, v := readRef(t, s, project, "refs/heads/main", "", time.Second)
		require.Equal(t, 200, code)
		require.Equal(t, ackedMain, v, "site %s read API", s.Name)
	}
	env.Run(t, src, "update-ref", "refs/heads/main", ackedMain)

	// c comes back and catches up to every acknowledged write.
	require.NoError(t, cc.Start())
	waitReady(t, cc)
	waitRefs(t, env, project, acked, c.Sites()...)
	require.Empty(t, quarantines(cc, project))
	require.True(t, poll(30*time.Second, func() bool {
		writes, _, peersBehind = behind(t, a)
		return writes["c"] == 0 && peersBehind == 0
	}), "a still counts c behind once it caught up: %v", writes)

	// With c back, sync mode takes the push.
	gittest.AddCommits(t, env, src, "main", 1)
	mustPush(t, env, src, url, "main")
	waitRefs(t, env, project, env.Refs(t, src), c.Sites()...)
}

// crashRounds is how many times TestOriginCrashAfterRefDBCommit crashes
// its origin.
const crashRounds = 3

// TestOriginCrashAfterRefDBCommit: a, the origin, SIGKILLs itself right
// after the refdb took its write. The client sees a failure; b and c, which
// voted, commit the write from the refdb on their own; a restarts without
// the fault, catches up, and takes the next push of the same branch.
func TestOriginCrashAfterRefDBCommit(t *testing.T) {
	requireGit(t)
	c := startCluster(t, cluster.Options{Sites: 3, Mode: "quorum", Acks: 2, Timeout: replTimeout,
		Env: func(site string) []string {
			if site == "a" {
				return []string{"SITESYNC_FAULT=after-refdb-commit"}
			}
			return nil
		}})
	a, b, cc := c.Site("a"), c.Site("b"), c.Site("c")
	env := gittest.Env(t)
	createProject(t, a, project)
	src := gittest.Generate(t, env, gittest.Shape{Commits: 20, Branches: 1, Tags: 1})
	// The first push goes through b: a would die on it.
	mustPush(t, env, src, b.GitURL(project), "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
	waitRefs(t, env, project, env.Refs(t, src), c.Sites()...)

	// A crash either lets git receive-pack abort its ref transaction or
	// kills it holding the ref's lock, as a power loss does: a few rounds
	// meet both.
	for round := 1; round <= crashRounds; round++ {
		gittest.AddCommits(t, env, src, "main", 2)
		want := env.Refs(t, src)
		start := time.Now()
		out, err := push(env, src, a.GitURL(project), "main")
		require.Error(t, err, "round %d: the origin died mid-push, yet the client saw success:\n%s", round, out)
		t.Logf("round %d: client of the crashed origin (%v): %s", round, time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
		require.True(t, poll(readyWait, func() bool { return !a.Running() }), "round %d: a did not die at the fault point", round)
		require.Equal(t, round, strings.Count(a.ReadLog(), "fault point reached"), "round %d", round)

		// b and c resolve their prepared write from the refdb alone.
		waitRefs(t, env, project, want, b, cc)
		t.Logf("round %d: b and c hold the write %v after the push began", round, time.Since(start).Round(time.Millisecond))
		locks, _ := filepath.Glob(filepath.Join(repoDir(a, project), "refs", "heads", "*.lock"))
		t.Logf("round %d: ref locks the crash left at a: %v", round, locks)

		// a restarts (without the fault after the last round) and catches up.
		if round == crashRounds {
			a.SetEnv()
		}
		restart := time.Now()
		require.NoError(t, a.Start())
		started := time.Since(restart)
		waitReady(t, a)
		ready := time.Since(restart)
		waitRefs(t, env, project, want, a)
		t.Logf("round %d: a restarted: healthy after %v, ready after %v, caught up after %v", round,
			started.Round(time.Millisecond), ready.Round(time.Millisecond), time.Since(restart).Round(time.Millisecond))
	}

	// The branch is not stuck: the next push at a is taken everywhere.
	gittest.AddCommits(t, env, src, "main", 1)
	start := time.Now()
	mustPush(t, env, src, a.GitURL(project), "main")
	pushed := time.Since(start)
	waitRefs(t, env, project, env.Refs(t, src), c.Sites()...)
	t.Logf("the next push at a: acknowledged after %v, everywhere after %v", pushed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
