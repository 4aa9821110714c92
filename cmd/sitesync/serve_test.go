package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/gittest"
	"github.com/sitesync/sitesync/internal/testkit/syncbuf"
)

// binary builds the sitesync binary once per test run.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "sitesync-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "sitesync")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func build(tb testing.TB) string {
	tb.Helper()
	bin, err := binary()
	require.NoError(tb, err)
	return bin
}

func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer ln.Close()
	return ln.Addr().String()
}

func TestServe(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	addr := freePort(t)
	cfgPath := filepath.Join(dir, "site.yaml")
	writeConfig := func(mode string) {
		cfg := fmt.Sprintf("site:\n  name: a\n  repos: repos\n  state: state\nhttp:\n  listen: %s\nrefdb:\n  backend: none\nreplication:\n  mode: %s\n", addr, mode)
		tmp := cfgPath + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(cfg), 0o644))
		require.NoError(t, os.Rename(tmp, cfgPath))
	}
	writeConfig("async")

	var logs syncbuf.Buffer
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	})

	base := "http://" + addr
	waitHealthy(t, base, 10*time.Second, "site never became healthy", &logs)

	req, _ := http.NewRequest(http.MethodPut, base+"/api/v1/projects/team%2Fapp", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	env := gittest.Env(t)
	src := gittest.Generate(t, env, gittest.Shape{Commits: 20, Branches: 2, Tags: 1})
	env.Run(t, src, "push", "--quiet", base+"/team/app.git", "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
	require.Equal(t, env.Refs(t, src), env.Refs(t, filepath.Join(dir, "repos", "team", "app.git")),
		"repositories live under site.repos, resolved against the config file's directory")

	resp, err = http.Get(base + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "ready: the refdb (none) answers")

	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	var metrics bytes.Buffer
	metrics.ReadFrom(resp.Body)
	resp.Body.Close()
	require.Contains(t, metrics.String(), "go_goroutines")

	// A live change is applied on SIGHUP and logged; a restart-only change is
	// refused with the key named.
	writeConfig("quorum")
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		s := logs.String()
		return strings.Contains(s, "config reloaded") && strings.Contains(s, "replication.mode")
	}, 10*time.Second, 20*time.Millisecond, "%s", &logs)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "a clean shutdown exits 0:\n%s", &logs)
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM:\n%s", &logs)
	}
	require.Contains(t, logs.String(), "project=team/app service=receive-pack status=200")
}

func TestServeRefusesBadConfig(t *testing.T) {
	bin := build(t)
	cfgPath := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("site:\n  name: a\n  repos: r\n  state: s\nmesh:\n  peers:\n    - {name: b, addr: 127.0.0.1:1, url: http://127.0.0.1:2}\n    - {name: b, addr: 127.0.0.1:3, url: http://127.0.0.1:4}\nreplication:\n  acks: 4\n"), 0o644))
	out, err := exec.Command(bin, "serve", "--config", cfgPath).CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 2, exit.ExitCode())
	require.Contains(t, string(out), `mesh.peers[1].name: duplicate "b"`)
	require.Contains(t, string(out), "replication.acks: 4 exceeds")

	out, err = exec.Command(bin, "serve").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), `required flag(s) "config" not set`)
}

func TestVersion(t *testing.T) {
	bin := build(t)
	out, err := exec.Command(bin, "version").CombinedOutput()
	require.NoError(t, err)
	require.Contains(t, string(out), "sitesync ")
}

// TestDemoSmoke runs the README's first command the way a newcomer does.
func TestDemoSmoke(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	out, err := exec.Command(bin, "demo", "--smoke", "--dir", dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, want := range []string{"site a", "site b", "site c", "all 10 refs identical, fsck clean", "smoke test passed"} {
		require.Contains(t, string(out), want)
	}
	require.FileExists(t, filepath.Join(dir, "sitesync.log"))

	out, err = exec.Command(bin, "demo", "--sites", "0").CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 2, exit.ExitCode())
	require.Contains(t, string(out), "--sites 0: want 1 to 26")
}

// TestHookInstall wires the hooks into a repository store and checks that a
// repository there runs them.
func TestHookInstall(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	e := gittest.Env(t)
	repos := filepath.Join(dir, "repos")
	e.Run(t, "", "init", "--quiet", "--bare", filepath.Join(repos, "x/y.git"))
	cfg := filepath.Join(dir, "site.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("site:\n  name: a\n  repos: repos\n  state: state\nhttp:\n  listen: 127.0.0.1:0\n  url: http://127.0.0.1:1\nrefdb:\n  backend: none\n"), 0o644))
	out, err := exec.Command(bin, "hook", "install", "--config", cfg).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "installed in 1 repositories")
	hooks := strings.TrimSpace(e.Run(t, filepath.Join(repos, "x/y.git"), "config", "core.hooksPath"))
	require.Equal(t, filepath.Join(dir, "state", "hooks"), hooks)
	script, err := os.ReadFile(filepath.Join(hooks, "reference-transaction"))
	require.NoError(t, err)
	require.Contains(t, string(script), "hook reference-transaction")

	// No daemon is running: a write that needs a decision fails, and says why.
	src := gittest.Generate(t, e, gittest.Shape{Commits: 2})
	out2, err := e.Try(src, "push", "file://"+filepath.Join(repos, "x/y.git"), "main")
	require.Error(t, err)
	require.Contains(t, out2, "reach the sitesync daemon")
}

// waitHealthy waits until the server at base answers /healthz, showing its
// log when it never does.
func waitHealthy(tb testing.TB, base string, limit time.Duration, what string, log fmt.Stringer) {
	tb.Helper()
	require.Eventually(tb, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, limit, 20*time.Millisecond, "%s:\n%s", what, log)
}
