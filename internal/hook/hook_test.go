package hook

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// TestMain lets the test binary stand in for `sitesync hook NAME`, so the
// hook scripts that git runs in these tests execute this package's Run.
func TestMain(m *testing.M) {
	if len(os.Args) >= 3 && os.Args[1] == "hook" {
		os.Exit(Run(context.Background(), os.Args[2], os.Args[3:], os.Stdin, os.Stderr, os.Getenv))
	}
	os.Exit(m.Run())
}

// recorder is a daemon that refuses refs under refs/heads/blocked/ and
// records every request.
type recorder struct {
	mu   sync.Mutex
	reqs []Request
}

func (r *recorder) handle(_ context.Context, req Request) Response {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	for _, u := range req.Updates {
		if strings.HasPrefix(u.Ref, "refs/heads/blocked/") {
			return Response{Lines: []string{"sitesync: rejected: " + u.Ref + " is blocked at site a"}}
		}
	}
	return Response{OK: true}
}

func (r *recorder) requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

func startServer(t *testing.T, h Handler) string {
	t.Helper()
	// Unix socket paths are limited to ~108 bytes; t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "hook")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "hook.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := NewServer(socket, h, nil)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	// Run makes the socket, then restricts it: wait for both.
	require.Eventually(t, func() bool {
		fi, err := os.Stat(socket)
		return err == nil && fi.Mode().Perm() == 0o600
	}, 5e9, 1e7, "the socket is there and only the daemon's user may talk to it")
	return socket
}

// server makes a bare repository whose hooks call the test binary.
func server(t *testing.T, env *gittest.GitEnv, socket string) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "srv.git")
	env.Run(t, "", "init", "--quiet", "--bare", repo)
	hooks := filepath.Join(t.TempDir(), "hooks")
	exe, err := os.Executable()
	require.NoError(t, err)
	require.NoError(t, WriteScripts(hooks, exe, socket))
	env.Run(t, repo, "config", "core.hooksPath", hooks)
	return repo
}

func TestPushThroughHooks(t *testing.T) {
	env := gittest.Env(t)
	rec := &recorder{}
	socket := startServer(t, rec.handle)
	repo := server(t, env, socket)
	src := gittest.Generate(t, env, gittest.Shape{Commits: 3, Branches: 1})
	head := env.Refs(t, src)["refs/heads/main"]

	env.Run(t, src, "push", "--quiet", repo, "main")
	require.Equal(t, head, env.Refs(t, repo)["refs/heads/main"])
	reqs := rec.requests()
	require.Len(t, reqs, 2, "pre-receive and prepared; the scripts answer committed themselves")
	require.Equal(t, PreReceive, reqs[0].Hook)
	require.NotEmpty(t, reqs[0].Quarantine, "pre-receive sees the quarantine")
	require.Equal(t, []Update{{Ref: "refs/heads/main", Old: strings.Repeat("0", 40), New: head}}, reqs[0].Updates)
	require.Equal(t, Prepared, reqs[1].Phase)
	real, err := filepath.EvalSymlinks(repo)
	require.NoError(t, err)
	require.Equal(t, real, reqs[1].GitDir)

	out, err := env.Try(src, "push", repo, "main:refs/heads/blocked/x")
	require.Error(t, err)
	require.Contains(t, out, "remote: sitesync: rejected: refs/heads/blocked/x is blocked at site a")
	_, ok := env.Refs(t, repo)["refs/heads/blocked/x"]
	require.False(t, ok, "a refused ref does not move")
}

func TestDaemonDownRefusesWrites(t *testing.T) {
	env := gittest.Env(t)
	dir, err := os.MkdirTemp("", "hook")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	repo := server(t, env, filepath.Join(dir, "nobody.sock"))
	src := gittest.Generate(t, env, gittest.Shape{Commits: 2})
	out, err := env.Try(src, "push", repo, "main")
	require.Error(t, err)
	require.Contains(t, out, "remote: sitesync: reach the sitesync daemon at")
	require.Empty(t, env.Refs(t, repo), "no ref moves without a decision")

	// Any other writer is refused too; the daemon's own writes of decided
	// transactions pass without asking.
	tree := strings.TrimSpace(env.RunInput(t, repo, []byte{}, "mktree"))
	c := strings.TrimSpace(env.Run(t, repo, "commit-tree", tree, "-m", "x"))
	out, err = env.Try(repo, "update-ref", "refs/heads/admin", c)
	require.Error(t, err)
	require.Contains(t, out, "reach the sitesync daemon")
	applying := exec.Command("git", "-C", repo, "update-ref", "refs/heads/admin", c)
	applying.Env = append(env.Vars(), EnvApplying+"=1")
	b, err := applying.CombinedOutput()
	require.NoError(t, err, string(b))
	require.Equal(t, c, env.Refs(t, repo)["refs/heads/admin"])
}

func TestParseUpdates(t *testing.T) {
	z, a := strings.Repeat("0", 40), strings.Repeat("a", 40)
	ups, err := ParseUpdates(strings.NewReader(z + " " + a + " refs/heads/main\n" + a + " " + z + " refs/tags/v 1\n"))
	require.NoError(t, err)
	require.Equal(t, []Update{{Ref: "refs/heads/main", Old: z, New: a}, {Ref: "refs/tags/v 1", Old: a, New: z}}, ups)
	for _, bad := range []string{"x y z\n", z + " " + a + "\n", z + " abc refs/x\n", z + " " + a + " \n"} {
		_, err := ParseUpdates(strings.NewReader(bad))
		require.ErrorContains(t, err, "malformed hook input", bad)
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Add([]byte(`{"hook":"pre-receive","git_dir":"/x","updates":[{"ref":"refs/heads/a","old":"0","new":"1"}]}` + "\n"))
	f.Add([]byte(`{"ok":true,"lines":["a"]}` + "\n"))
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req Request
		if err := readMessage(bufio.NewReader(strings.NewReader(string(b))), &req); err != nil {
			return
		}
		var buf strings.Builder
		require.NoError(t, writeMessage(&buf, req))
		var again Request
		require.NoError(t, readMessage(bufio.NewReader(strings.NewReader(buf.String())), &again))
		require.Equal(t, req, again)
	})
}
