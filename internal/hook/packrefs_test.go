package hook

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// refuser is a daemon that refuses every write it is asked about.
type refuser struct {
	mu   sync.Mutex
	reqs []Request
}

const refusal = "sitesync: refused: every write is refused at this test site"

func (r *refuser) handle(_ context.Context, req Request) Response {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return Response{Lines: []string{refusal}}
}

func (r *refuser) requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// gitWith runs git in dir with extra environment entries. (Not git -C: the
// command line stays the one gc runs.)
func gitWith(env *gittest.GitEnv, dir string, extra []string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(slices.Clone(env.Vars()), extra...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// filled gives the repository at repo the refs of a generated one (with
// annotated tags, which packed-refs peels), written as the daemon writes a
// decided transaction, and returns them.
func filled(t *testing.T, env *gittest.GitEnv, repo string) map[string]string {
	t.Helper()
	shape := gittest.Shape{Commits: 3, Branches: 6, Tags: 2}
	src := gittest.Generate(t, env, shape)
	out, err := gitWith(env, repo, []string{EnvApplying + "=1"}, "fetch", "--quiet", src, "refs/*:refs/*")
	require.NoError(t, err, out)
	refs := env.Refs(t, src)
	require.Equal(t, refs, env.Refs(t, repo))
	require.Len(t, refs, 1+shape.Branches+shape.Tags)
	return refs
}

// looseRefs is every file under refs/ in repo.
func looseRefs(t *testing.T, repo string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(repo, "refs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	require.NoError(t, err)
	return files
}

// requirePacked checks that every ref of want is in repo's packed-refs at
// its value, none is loose, and git reads the same refs.
func requirePacked(t *testing.T, env *gittest.GitEnv, repo string, want map[string]string) {
	t.Helper()
	require.Equal(t, want, env.Refs(t, repo), "no ref moved")
	require.Empty(t, looseRefs(t, repo), "every loose ref was pruned")
	packed, err := os.ReadFile(filepath.Join(repo, "packed-refs"))
	require.NoError(t, err)
	for ref, id := range want {
		require.Contains(t, string(packed), id+" "+ref+"\n")
	}
}

// requireRefused checks that real writes in repo are still refused with
// refusal.
func requireRefused(t *testing.T, env *gittest.GitEnv, repo string, before map[string]string, refusal string) {
	t.Helper()
	main := before["refs/heads/main"]
	var other string
	for ref, id := range before {
		if strings.HasPrefix(ref, "refs/heads/") && id != main {
			other = id
			break
		}
	}
	require.NotEmpty(t, other)
	for _, args := range [][]string{
		{"update-ref", "refs/heads/x", main},     // a creation
		{"update-ref", "refs/heads/main", other}, // an update
		{"update-ref", "-d", "refs/heads/main"},  // a deletion
	} {
		out, err := gitWith(env, repo, nil, args...)
		require.Error(t, err, "git %v", args)
		require.Contains(t, out, refusal)
	}
	require.Equal(t, before, env.Refs(t, repo))
}

// TestPackRefsPassesHooks: with hooks whose daemon refuses every write, git
// pack-refs and git gc (also with a push's SITESYNC_TXN, as gc --auto after
// a push has it) still pack every ref, unchanged, without asking the
// daemon; real writes are still refused.
func TestPackRefsPassesHooks(t *testing.T) {
	tests := []struct {
		name  string
		extra []string
		args  []string
	}{
		{name: "pack-refs", args: []string{"pack-refs", "--all", "--prune"}},
		{name: "pack-refs with a txn", extra: []string{EnvTxn + "=push-1"}, args: []string{"pack-refs", "--all", "--prune"}},
		{name: "pack-refs with options", args: []string{"-c", "core.packedRefsTimeout=2000", "pack-refs", "--all"}},
		{name: "gc", extra: []string{EnvTxn + "=push-1"}, args: []string{"gc", "--quiet"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := gittest.Env(t)
			rec := &refuser{}
			repo := server(t, env, startServer(t, rec.handle))
			refs := filled(t, env, repo)
			require.NotEmpty(t, looseRefs(t, repo))

			out, err := gitWith(env, repo, tc.extra, tc.args...)
			require.NoError(t, err, out)
			requirePacked(t, env, repo, refs)
			require.Empty(t, rec.requests(), "pack-refs asks the daemon nothing")

			requireRefused(t, env, repo, refs, refusal)
			require.NotEmpty(t, rec.requests())
		})
	}
}

// TestPackRefsGoCheck: a hook script that runs sitesync without the shell
// check (and without exec, so git is its grandparent) still lets pack-refs
// through, from the Go side.
func TestPackRefsGoCheck(t *testing.T) {
	env := gittest.Env(t)
	rec := &refuser{}
	socket := startServer(t, rec.handle)
	repo := server(t, env, socket)
	exe, err := os.Executable()
	require.NoError(t, err)
	hooks := t.TempDir()
	script := "#!/bin/sh\ncase \"$1\" in committed|aborted) exit 0 ;; esac\n" + EnvSocket + "=" + shellQuote(socket) + " " + shellQuote(exe) + " hook reference-transaction \"$@\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(hooks, ReferenceTransaction), []byte(script), 0o755))
	env.Run(t, repo, "config", "core.hooksPath", hooks)
	refs := filled(t, env, repo)

	out, err := gitWith(env, repo, []string{EnvTxn + "=push-1"}, "pack-refs", "--all", "--prune")
	require.NoError(t, err, out)
	requirePacked(t, env, repo, refs)
	require.Empty(t, rec.requests())
	requireRefused(t, env, repo, refs, refusal)
}

// TestPackRefsShellCheck: the installed scripts let gc's pack-refs through
// by themselves, starting no sitesync (here a binary that refuses
// everything).
func TestPackRefsShellCheck(t *testing.T) {
	env := gittest.Env(t)
	repo := filepath.Join(t.TempDir(), "srv.git")
	env.Run(t, "", "init", "--quiet", "--bare", repo)
	hooks := t.TempDir()
	require.NoError(t, WriteScripts(hooks, "/bin/false", "/nonexistent/hook.sock"))
	env.Run(t, repo, "config", "core.hooksPath", hooks)
	refs := filled(t, env, repo)

	for _, args := range [][]string{{"pack-refs", "--all", "--prune"}, {"gc", "--quiet"}} {
		out, err := gitWith(env, repo, nil, args...)
		require.NoError(t, err, out)
		requirePacked(t, env, repo, refs)
	}
	requireRefused(t, env, repo, refs, "")
}

func TestPackRefsCommand(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want bool
	}{
		{name: "gc's", argv: []string{"git", "pack-refs", "--all", "--prune"}, want: true},
		{name: "full path", argv: []string{"/usr/bin/git", "pack-refs"}, want: true},
		{name: "dashed", argv: []string{"/usr/lib/git-core/git-pack-refs", "--all"}, want: true},
		{name: "global options", argv: []string{"git", "-c", "a.b=c", "-C", "/r", "--git-dir", "/r", "--bare", "--git-dir=/r", "pack-refs"}, want: true},
		{name: "option value that looks like the command", argv: []string{"git", "-C", "pack-refs", "update-ref", "refs/heads/x", "1"}},
		{name: "update-ref", argv: []string{"git", "update-ref", "refs/heads/pack-refs", "1"}},
		{name: "receive-pack", argv: []string{"git", "receive-pack", "/r"}},
		{name: "not git", argv: []string{"sh", "git", "pack-refs"}},
		{name: "no command", argv: []string{"git", "-c"}},
		{name: "empty", argv: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, packRefsCommand(tc.argv))
		})
	}
}

func TestPackRefsBookkeeping(t *testing.T) {
	z, a, b := strings.Repeat("0", 40), strings.Repeat("a", 40), strings.Repeat("b", 40)
	require.True(t, packRefsBookkeeping([]Update{{Ref: "refs/heads/x", Old: z, New: a}, {Ref: "refs/heads/y", Old: z, New: b}}))
	require.True(t, packRefsBookkeeping([]Update{{Ref: "refs/heads/x", Old: a, New: z}}))
	require.False(t, packRefsBookkeeping([]Update{{Ref: "refs/heads/x", Old: a, New: b}}), "a value that moves")
	require.False(t, packRefsBookkeeping([]Update{{Ref: "refs/heads/x", Old: z, New: z}}))
	require.False(t, packRefsBookkeeping(nil))
}

func TestProcStat(t *testing.T) {
	comm, ppid, ok := procStat(os.Getpid())
	require.True(t, ok)
	require.Equal(t, os.Getppid(), ppid)
	require.Equal(t, filepath.Base(os.Args[0])[:min(15, len(filepath.Base(os.Args[0])))], comm)
	_, _, ok = procStat(1 << 30)
	require.False(t, ok)
}

// TestHookEndsWithGit: a hook waiting on the daemon ends when its git is
// stopped, so the daemon's request ends too; git leaves no lock.
func TestHookEndsWithGit(t *testing.T) {
	env := gittest.Env(t)
	asked := make(chan struct{}, 1)
	ended := make(chan struct{}, 1)
	socket := startServer(t, func(ctx context.Context, req Request) Response {
		asked <- struct{}{}
		<-ctx.Done()
		ended <- struct{}{}
		return Response{}
	})
	repo := server(t, env, socket)
	src := gittest.Generate(t, env, gittest.Shape{Commits: 1})
	out, err := gitWith(env, repo, []string{EnvApplying + "=1"}, "fetch", "--quiet", src, "refs/heads/main:refs/heads/main")
	require.NoError(t, err, out)
	main := env.Refs(t, repo)["refs/heads/main"]

	cmd := exec.Command("git", "-C", repo, "update-ref", "refs/heads/x", main)
	cmd.Env = env.Vars()
	require.NoError(t, cmd.Start())
	select {
	case <-asked:
	case <-time.After(20 * time.Second):
		t.Fatal("the hook did not ask the daemon")
	}
	require.FileExists(t, filepath.Join(repo, "refs/heads/x.lock"))
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Error(t, cmd.Wait())
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the hook outlived its git: the daemon still waits on it")
	}
	require.NoFileExists(t, filepath.Join(repo, "refs/heads/x.lock"))
	_, ok := env.Refs(t, repo)["refs/heads/x"]
	require.False(t, ok)
}
