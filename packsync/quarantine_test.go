package packsync

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// sites returns an origin with a base history and two more commits on main,
// and a peer holding only the base.
func sites(t *testing.T, env *gittest.GitEnv) (origin, peer, base, tip string) {
	t.Helper()
	origin = gittest.Generate(t, env, gittest.Shape{Commits: 30})
	base = env.Refs(t, origin)["refs/heads/main"]
	peer = filepath.Join(t.TempDir(), "peer.git")
	env.Run(t, "", "clone", "--quiet", "--mirror", origin, peer)
	gittest.AddCommits(t, env, origin, "main", 2)
	tip = env.Refs(t, origin)["refs/heads/main"]
	return origin, peer, base, tip
}

func pack(t *testing.T, env *gittest.GitEnv, repo string, thin bool, revs ...string) []byte {
	t.Helper()
	args := []string{"pack-objects", "--stdout", "--revs", "--quiet"}
	if thin {
		args = append(args, "--thin")
	}
	return []byte(env.RunInput(t, repo, []byte(strings.Join(revs, "\n")+"\n"), args...))
}

func hasObject(env *gittest.GitEnv, repo, id string) bool {
	_, err := env.Try(repo, "cat-file", "-e", id)
	return err == nil
}

func TestQuarantineCommit(t *testing.T) {
	for _, thin := range []bool{false, true} {
		t.Run(map[bool]string{false: "full", true: "thin"}[thin], func(t *testing.T) {
			env := gittest.Env(t)
			ctx := context.Background()
			origin, peer, base, tip := sites(t, env)
			q, err := Create(peer, "txn-1")
			require.NoError(t, err)
			require.NoError(t, q.IndexPack(ctx, bytes.NewReader(pack(t, env, origin, thin, tip, "^"+base))))

			missing, err := q.Missing(ctx, []string{tip, base, refmove.ZeroID})
			require.NoError(t, err)
			require.Empty(t, missing, "the new tip is complete in quarantine + repository")
			require.False(t, hasObject(env, peer, tip), "quarantined objects are not in the repository yet")
			txns, err := List(peer)
			require.NoError(t, err)
			require.Equal(t, []string{"txn-1"}, txns)

			require.NoError(t, q.Sync())
			require.NoError(t, q.Migrate())
			require.True(t, hasObject(env, peer, tip))
			_, err = os.Stat(q.Dir())
			require.ErrorIs(t, err, os.ErrNotExist, "the quarantine is gone after migration")
			env.Run(t, peer, "update-ref", "refs/heads/main", tip, base)
			env.Run(t, peer, "fsck", "--strict", "--no-dangling")
		})
	}
}

func TestQuarantineRefusesIncompletePack(t *testing.T) {
	env := gittest.Env(t)
	ctx := context.Background()
	origin, _, base, tip := sites(t, env)
	// A peer that has none of the base history.
	empty := filepath.Join(t.TempDir(), "empty.git")
	env.Run(t, "", "init", "--quiet", "--bare", empty)

	q, err := Create(empty, "txn-2")
	require.NoError(t, err)
	err = q.IndexPack(ctx, bytes.NewReader(pack(t, env, origin, false, tip, "^"+base)))
	require.Error(t, err, "a pack that links to objects the peer lacks is refused")
	missing, err := q.Missing(ctx, []string{tip})
	require.NoError(t, err)
	require.Equal(t, []string{tip}, missing)

	err = q.IndexPack(ctx, strings.NewReader("PACK\x00\x00\x00\x02\x00\x00\x00\x01garbage"))
	require.ErrorContains(t, err, "index-pack")

	require.NoError(t, q.Drop())
	txns, err := List(empty)
	require.NoError(t, err)
	require.Empty(t, txns, "nothing is left behind")
	require.False(t, hasObject(env, empty, tip))
	env.Run(t, empty, "fsck", "--strict")
}

func TestCreateRejectsBadTxn(t *testing.T) {
	for _, txn := range []string{"", "..", "a/b", "a\\b", "x\x00"} {
		_, err := Create(t.TempDir(), txn)
		require.ErrorContains(t, err, "invalid transaction id", txn)
	}
}

// A receive-pack killed mid-push leaves its quarantine (the pushed objects
// in tmp_objdir-incoming-*): DropStaleGit leaves it while it is recent,
// removes it once nothing in it changed for the idle time, and touches
// neither the repository's objects nor sitesync's own quarantines.
func TestDropStaleGit(t *testing.T) {
	env := gittest.Env(t)
	origin, peer, _, tip := sites(t, env)
	// The hook tells which receive-pack runs it, and its own pid, then
	// waits to be killed.
	pidFile := filepath.Join(t.TempDir(), "pid")
	hook := "#!/bin/sh\necho $PPID $$ > " + pidFile + ".tmp && mv " + pidFile + ".tmp " + pidFile + "\nexec sleep 60\n"
	require.NoError(t, os.WriteFile(filepath.Join(peer, "hooks", "pre-receive"), []byte(hook), 0o755))
	push := exec.Command("git", "push", "--quiet", peer, "main")
	push.Dir, push.Env = origin, env.Vars()
	require.NoError(t, push.Start())
	var pids []int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		pids = nil
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				return false
			}
			pids = append(pids, pid)
		}
		return len(pids) == 2
	}, 20*time.Second, 10*time.Millisecond, "the pre-receive hook did not run")
	require.NoError(t, syscall.Kill(pids[0], syscall.SIGKILL)) // receive-pack
	_ = push.Wait()                                            // fails: its receive-pack is gone
	_ = syscall.Kill(pids[1], syscall.SIGKILL)                 // the hook's sleep

	left, _ := filepath.Glob(filepath.Join(peer, "objects", "tmp_objdir-incoming-*"))
	require.Len(t, left, 1, "the killed receive-pack left its quarantine")
	objs, _ := filepath.Glob(filepath.Join(left[0], "??", "*"))
	require.NotEmpty(t, objs, "with the pushed objects in it (loose: a small push is unpacked)")
	ours, err := Create(peer, "txn-ours")
	require.NoError(t, err)

	dropped, err := DropStaleGit(peer, time.Hour, time.Now())
	require.NoError(t, err)
	require.Empty(t, dropped, "a recent quarantine may be a push in progress")

	dropped, err = DropStaleGit(peer, time.Hour, time.Now().Add(2*time.Hour))
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Base(left[0])}, dropped)
	require.NoDirExists(t, left[0])
	require.DirExists(t, ours.Dir(), "sitesync's own quarantines are not git's")
	require.False(t, hasObject(env, peer, tip), "the killed push's objects never reached the repository")
	env.Run(t, peer, "fsck", "--strict", "--no-dangling")
}

// A quarantine whose pack is still arriving changes below its top
// directory, whose own time stays old: LastChange sees the newest.
func TestLastChange(t *testing.T) {
	q, err := Create(t.TempDir(), "txn-1")
	require.NoError(t, err)
	pack := filepath.Join(q.Dir(), "pack", "tmp_pack_x")
	require.NoError(t, os.WriteFile(pack, []byte("PACK"), 0o644))
	old, recent := time.Now().Add(-3*time.Hour), time.Now().Add(-time.Minute)
	require.NoError(t, os.Chtimes(q.Dir(), old, old))
	require.NoError(t, os.Chtimes(filepath.Join(q.Dir(), "pack"), old, old))
	require.NoError(t, os.Chtimes(pack, recent, recent))
	got, err := LastChange(q.Dir())
	require.NoError(t, err)
	require.WithinDuration(t, recent, got, time.Second)

	_, err = LastChange(filepath.Join(q.Dir(), "absent"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
