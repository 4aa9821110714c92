package git

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/stretchr/testify/require"
)

// stopBound is how long a stopped git may take to be gone in these tests:
// it exits at once on SIGTERM; the rest is a loaded machine.
const stopBound = 5 * time.Second

// leftovers is every lock file in the repository at dir, and packed-refs.new.
func leftovers(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".lock") || d.Name() == "packed-refs.new") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	require.NoError(tb, err)
	slices.Sort(out)
	return out
}

// blockingHook points the repository at dir at a reference-transaction
// hook that, in the "prepared" phase (git holds every lock of the
// transaction then), records git's pid and its own and sleeps. It returns
// a function that waits for the hook to be running and returns git's pid.
// The sleeping hook is killed when the test ends.
func blockingHook(tb testing.TB, dir string) (waitPrepared func() int) {
	tb.Helper()
	hooks := tb.TempDir()
	script := `#!/bin/sh
if [ "$1" = prepared ]; then
	echo $PPID >"$0.git.tmp" && mv "$0.git.tmp" "$0.git"
	echo $$ >"$0.hook.tmp" && mv "$0.hook.tmp" "$0.hook"
	exec sleep 30 </dev/null >/dev/null 2>&1
fi
cat >/dev/null
`
	path := filepath.Join(hooks, "reference-transaction")
	require.NoError(tb, os.WriteFile(path, []byte(script), 0o755))
	gitOut(tb, dir, "config", "core.hooksPath", hooks)
	readPid := func(name string) int {
		b, err := os.ReadFile(path + "." + name)
		if err != nil {
			return 0
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	tb.Cleanup(func() {
		if pid := readPid("hook"); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL) // the orphaned sleep
		}
	})
	return func() int {
		require.Eventually(tb, func() bool { return readPid("hook") > 0 }, 20*time.Second, 10*time.Millisecond,
			"the reference-transaction hook did not run")
		return readPid("git")
	}
}

// requireGone waits for the process pid to be gone (exited and reaped).
func requireGone(tb testing.TB, pid int) {
	tb.Helper()
	require.Positive(tb, pid)
	require.Eventually(tb, func() bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }, stopBound, 10*time.Millisecond,
		"git %d is still there", pid)
}

// lockRepo is a bare repository with refs/heads/main at c1 (loose) and
// refs/heads/gone at c1 (packed only).
func lockRepo(tb testing.TB) (dir, c1, c2 string) {
	tb.Helper()
	dir = newBareRepo(tb)
	c1 = commit(tb, dir, "one")
	c2 = commit(tb, dir, "two", c1)
	gitOut(tb, dir, "update-ref", "refs/heads/gone", c1)
	gitOut(tb, dir, "pack-refs", "--all", "--prune")
	gitOut(tb, dir, "update-ref", "refs/heads/main", c1)
	return dir, c1, c2
}

// TestPrepareCancelledInHook: the context of a transaction ends while
// update-ref holds its locks (its reference-transaction hook is running).
// git is stopped so that it removes them; the next write of the same refs
// succeeds.
func TestPrepareCancelledInHook(t *testing.T) {
	dir, c1, c2 := lockRepo(t)
	waitPrepared := blockingHook(t, dir)
	u := gitUpdater(t, dir)
	batch := []RefUpdate{
		{Ref: "refs/heads/main", Old: c1, New: c2},
		{Ref: "refs/heads/gone", Old: c1, New: refmove.ZeroID},
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := u.Prepare(ctx, batch)
		done <- err
	}()
	gitPid := waitPrepared()
	require.Equal(t, []string{"packed-refs.lock", "packed-refs.new", "refs/heads/gone.lock", "refs/heads/main.lock"}, leftovers(t, dir),
		"git holds the transaction's locks while the hook runs")
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(stopBound):
		t.Fatal("Prepare did not return after its context ended")
	}
	requireGone(t, gitPid)
	require.Empty(t, leftovers(t, dir))
	require.Equal(t, map[string]string{"refs/heads/main": c1, "refs/heads/gone": c1}, listRefs(t, dir))

	gitOut(t, dir, "config", "--unset", "core.hooksPath")
	require.NoError(t, u.Apply(context.Background(), batch))
	require.Equal(t, map[string]string{"refs/heads/main": c2}, listRefs(t, dir))
}

// TestCommitAfterContextEnded: a prepared transaction whose context ends
// before Commit (a daemon paused past its deadline) is rolled back at once,
// not left prepared in an idle update-ref: any writer can take its refs.
func TestCommitAfterContextEnded(t *testing.T) {
	dir, c1, c2 := lockRepo(t)
	u := gitUpdater(t, dir)
	batch := []RefUpdate{
		{Ref: "refs/heads/main", Old: c1, New: c2},
		{Ref: "refs/heads/gone", Old: c1, New: refmove.ZeroID},
	}
	ctx, cancel := context.WithCancel(context.Background())
	tx, err := u.Prepare(ctx, batch)
	require.NoError(t, err)
	require.NotEmpty(t, leftovers(t, dir))
	cancel()
	require.ErrorIs(t, tx.Commit(ctx), context.Canceled)
	require.Empty(t, leftovers(t, dir))
	require.Equal(t, map[string]string{"refs/heads/main": c1, "refs/heads/gone": c1}, listRefs(t, dir))

	gitOut(t, dir, "update-ref", "refs/heads/main", c2, c1) // another writer
	require.NoError(t, u.Apply(context.Background(), []RefUpdate{{Ref: "refs/heads/gone", Old: c1, New: refmove.ZeroID}}))
	require.Equal(t, map[string]string{"refs/heads/main": c2}, listRefs(t, dir))
}

// TestRunCancelledInHook: a git run through run() whose context ends while
// it holds a ref lock (in its reference-transaction hook) exits and leaves
// no lock.
func TestRunCancelledInHook(t *testing.T) {
	dir, c1, c2 := lockRepo(t)
	waitPrepared := blockingHook(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, dir, nil, nil, nil, "update-ref", "refs/heads/main", c2, c1) }()
	gitPid := waitPrepared()
	require.Equal(t, []string{"refs/heads/main.lock"}, leftovers(t, dir))
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
		var gitErr *Error
		require.ErrorAs(t, err, &gitErr)
		require.Contains(t, gitErr.Error(), "signal: terminated", "stopped by SIGTERM, not SIGKILL")
	case <-time.After(stopBound):
		t.Fatal("run did not return after its context ended")
	}
	require.Less(t, time.Since(start), stopGrace, "git exited on SIGTERM, without the SIGKILL fallback")
	requireGone(t, gitPid)
	require.Empty(t, leftovers(t, dir))
	gitOut(t, dir, "config", "--unset", "core.hooksPath")
	gitOut(t, dir, "update-ref", "refs/heads/main", c2, c1)
}

// ignoringTERM is git running a shell alias that ignores SIGTERM and
// sleeps, its pid written to pidFile: git passes SIGTERM on to it and waits
// for it, so only SIGKILL ends git.
func ignoringTERM(pidFile string) []string {
	return []string{"-c", `alias.stuck=!trap '' TERM; echo $$ >` + pidFile + `.tmp && mv ` + pidFile + `.tmp ` + pidFile + `; exec sleep 30`, "stuck"}
}

func readPidFile(tb testing.TB, path string) int {
	tb.Helper()
	var pid int
	require.Eventually(tb, func() bool {
		b, err := os.ReadFile(path)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	}, 20*time.Second, 10*time.Millisecond)
	tb.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

// TestStopIgnoringSIGTERM: a git that does not exit on SIGTERM is SIGKILLed
// after stopGrace, and the call returns by then, through run() and through a
// long-lived process.
func TestStopIgnoringSIGTERM(t *testing.T) {
	dir := newBareRepo(t)
	bound := stopGrace + stopBound

	t.Run("run", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- run(ctx, dir, nil, nil, nil, ignoringTERM(pidFile)...) }()
		readPidFile(t, pidFile)
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
			require.ErrorContains(t, err, "signal: killed")
		case <-time.After(bound):
			t.Fatal("run did not return after stopGrace")
		}
		require.GreaterOrEqual(t, time.Since(start), stopGrace, "SIGKILL only after the grace")
	})

	t.Run("proc", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		dirty := 0
		p := &proc{dir: dir, args: ignoringTERM(pidFile), dirty: func() error { dirty++; return nil }}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			done <- p.exchange(ctx,
				func(w *bufio.Writer) error { _, err := w.WriteString("hello\n"); return err },
				func(r *bufio.Reader) error { _, err := r.ReadString('\n'); return err })
		}()
		readPidFile(t, pidFile)
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(bound):
			t.Fatal("exchange did not return after stopGrace")
		}
		require.GreaterOrEqual(t, time.Since(start), stopGrace, "SIGKILL only after the grace")
		p.mu.Lock()
		defer p.mu.Unlock()
		require.Nil(t, p.live, "the process is gone")
		require.Equal(t, 1, dirty, "a SIGKILLed process's leftovers are cleaned up")
	})
}

// TestKilledUpdateRefLocks: update-ref SIGKILLed holding a prepared
// transaction (the fallback after stopGrace, or the OOM killer) cannot
// remove its locks; the updater removes exactly those of that transaction
// and leaves every other writer's.
func TestKilledUpdateRefLocks(t *testing.T) {
	tests := []struct {
		name   string
		delete bool
		// after runs once git is dead; it may add files of other writers.
		after func(tb testing.TB, dir string, c1 string)
		left  []string // what remains
	}{
		{
			name:   "update and delete",
			delete: true,
			left:   nil,
		},
		{
			name: "another writer's locks",
			after: func(tb testing.TB, dir, _ string) {
				require.NoError(tb, os.WriteFile(filepath.Join(dir, "packed-refs.lock"), nil, 0o644))
				require.NoError(tb, os.WriteFile(filepath.Join(dir, "refs/heads/other.lock"), nil, 0o644))
			},
			left: []string{"packed-refs.lock", "refs/heads/other.lock"},
		},
		{
			name: "lock older than the transaction",
			after: func(tb testing.TB, dir, _ string) {
				old := time.Now().Add(-time.Hour)
				require.NoError(tb, os.Chtimes(filepath.Join(dir, "refs/heads/main.lock"), old, old))
			},
			left: []string{"refs/heads/main.lock"},
		},
		{
			name: "lock with another value",
			after: func(tb testing.TB, dir, c1 string) {
				require.NoError(tb, os.WriteFile(filepath.Join(dir, "refs/heads/main.lock"), []byte(c1+"\n"), 0o644))
			},
			left: []string{"refs/heads/main.lock"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, c1, c2 := lockRepo(t)
			u := gitUpdater(t, dir)
			batch := []RefUpdate{
				{Ref: "refs/heads/main", Old: c1, New: c2},
				{Ref: "refs/heads/new", Old: refmove.ZeroID, New: c2},
			}
			want := []string{"refs/heads/main.lock", "refs/heads/new.lock"}
			if tc.delete {
				batch = append(batch, RefUpdate{Ref: "refs/heads/gone", Old: c1, New: refmove.ZeroID})
				want = []string{"packed-refs.lock", "packed-refs.new", "refs/heads/gone.lock", "refs/heads/main.lock", "refs/heads/new.lock"}
			}
			ctx := context.Background()
			tx, err := u.Prepare(ctx, batch)
			require.NoError(t, err)
			// Prepare returned holding the updater's lock: the process is
			// this test's to look at.
			r := u.p.live
			require.NoError(t, r.cmd.Process.Kill())
			<-r.exited
			require.Equal(t, want, leftovers(t, dir), "SIGKILL leaves git's locks")
			if tc.after != nil {
				tc.after(t, dir, c1)
			}

			require.Error(t, tx.Commit(ctx))
			require.Equal(t, tc.left, leftovers(t, dir))
			require.Equal(t, map[string]string{"refs/heads/main": c1, "refs/heads/gone": c1}, listRefs(t, dir))
			for _, f := range tc.left {
				require.NoError(t, os.Remove(filepath.Join(dir, f)))
			}
			require.NoError(t, u.Apply(ctx, batch))
			require.Empty(t, leftovers(t, dir))
		})
	}
}

// TestHeldLocksWindow: a lock file made after the transaction's commit or
// abort was sent is another writer's, made once git had released ours.
func TestHeldLocksWindow(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "main.lock")
	h := &heldLocks{since: coarseNow()}
	write := func() {
		require.NoError(t, os.WriteFile(path, nil, 0o644))
	}
	write()
	h.until = time.Now()
	later := h.until.Add(time.Second)
	require.NoError(t, os.Chtimes(path, later, later))
	removed, err := h.removeIfOurs(path, []string{""})
	require.NoError(t, err)
	require.False(t, removed, "newer than the commit")
	require.FileExists(t, path)

	require.NoError(t, os.Chtimes(path, h.since, h.since))
	removed, err = h.removeIfOurs(path, []string{""})
	require.NoError(t, err)
	require.True(t, removed)
	require.NoFileExists(t, path)

	// A lock made just after since, by the file system's clock, is ours.
	h = &heldLocks{since: coarseNow()}
	write()
	removed, err = h.removeIfOurs(path, []string{""})
	require.NoError(t, err)
	require.True(t, removed, "a file made after since is not stamped before it")

	_, ok := refLockPath(dir, "refs/heads/../../x")
	require.False(t, ok)
}

// TestFastPathCancelled: the Go ref writer takes no lock for a transaction
// whose context has ended, and gives back every lock it took when it gives
// up on one (see also TestRefFastLockHeld).
func TestFastPathCancelled(t *testing.T) {
	dir, c1, c2 := lockRepo(t)
	u := fastUpdater(t, dir, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := u.Apply(ctx, []RefUpdate{{Ref: "refs/heads/main", Old: c1, New: c2}, {Ref: "refs/heads/new", Old: refmove.ZeroID, New: c2}})
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, leftovers(t, dir))
	require.Equal(t, map[string]string{"refs/heads/main": c1, "refs/heads/gone": c1}, listRefs(t, dir))

	// A directory in the way of the second ref's lock: the first lock goes too.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "refs/heads/zzz.lock"), 0o755))
	err = u.Apply(context.Background(), []RefUpdate{{Ref: "refs/heads/main", Old: c1, New: c2}, {Ref: "refs/heads/zzz", Old: refmove.ZeroID, New: c2}})
	require.Error(t, err)
	require.NotEqual(t, "", u.Stats().LastFallback)
	require.NoFileExists(t, filepath.Join(dir, "refs/heads/main.lock"))
	require.Equal(t, c1, listRefs(t, dir)["refs/heads/main"])
}

// TestRemoveStaleLocks: what a git killed with the machine left goes at the
// next start, packed-refs.new included (git creates it with O_EXCL: one
// left behind fails every later packed-refs write).
func TestRemoveStaleLocks(t *testing.T) {
	root := newRoot(t)
	_, err := root.Create(context.Background(), "p")
	require.NoError(t, err)
	dir, err := root.Existing("p")
	require.NoError(t, err)
	c1 := commit(t, dir, "one")
	gitOut(t, dir, "update-ref", "refs/heads/main", c1)
	gitOut(t, dir, "update-ref", "refs/heads/gone", c1)
	gitOut(t, dir, "pack-refs", "--all")
	stale := []string{"packed-refs.lock", "packed-refs.new", "refs/heads/main.lock"}
	old := time.Now().Add(-time.Minute)
	for _, f := range stale {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
		require.NoError(t, os.Chtimes(filepath.Join(dir, f), old, old))
	}
	removed, err := root.RemoveStaleLocks(time.Now())
	require.NoError(t, err)
	require.Len(t, removed, len(stale))
	require.Empty(t, leftovers(t, dir))
	gitOut(t, dir, "update-ref", "-d", "refs/heads/gone") // rewrites packed-refs
	gitOut(t, dir, "pack-refs", "--all")
	require.Equal(t, map[string]string{"refs/heads/main": c1}, listRefs(t, dir))
}
