package gittest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitesync/sitesync/internal/sample"
)

// GitEnv is the environment git commands of a test run with.
type GitEnv struct {
	vars []string
}

// Env returns an environment with its own empty HOME, no system
// configuration and fixed identities, so a test sees the same git whatever
// the machine's configuration.
func Env(tb testing.TB) *GitEnv {
	tb.Helper()
	home := tb.TempDir()
	vars := append(os.Environ(),
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+filepath.Join(home, ".gitconfig"),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Test Author", "GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_COMMITTER_NAME=Test Committer", "GIT_COMMITTER_EMAIL=committer@example.com",
	)
	return &GitEnv{vars: vars}
}

// Vars is the environment as KEY=VALUE entries, for commands a test builds.
func (e *GitEnv) Vars() []string { return e.vars }

// Try runs git in dir ("" for the current directory) and returns its
// combined output and error.
func (e *GitEnv) Try(dir string, args ...string) (string, error) {
	return e.TryInput(dir, nil, args...)
}

// TryInput is Try with standard input.
func (e *GitEnv) TryInput(dir string, stdin []byte, args ...string) (string, error) {
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.Command("git", args...)
	cmd.Env = e.vars
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Run runs git in dir and fails the test if it fails. It returns stdout.
func (e *GitEnv) Run(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	return e.RunInput(tb, dir, nil, args...)
}

// RunInput is Run with standard input.
func (e *GitEnv) RunInput(tb testing.TB, dir string, stdin []byte, args ...string) string {
	tb.Helper()
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.Command("git", args...)
	cmd.Env = e.vars
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("git %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// Refs lists every ref of the repository at dir with its value.
func (e *GitEnv) Refs(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	refs := make(map[string]string)
	for _, line := range strings.Split(e.Run(tb, dir, "for-each-ref", "--format=%(objectname) %(refname)"), "\n") {
		if id, name, ok := strings.Cut(line, " "); ok {
			refs[name] = id
		}
	}
	return refs
}

// Shape says what Generate builds.
type Shape = sample.Shape

// Generate builds a bare repository of the given shape with git fast-import
// and returns its directory. Contents are deterministic for a shape.
func Generate(tb testing.TB, e *GitEnv, s Shape) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "src.git")
	e.Run(tb, "", "init", "--quiet", "--bare", "--initial-branch=main", dir)
	var in bytes.Buffer
	if err := sample.Write(&in, s); err != nil {
		tb.Fatal(err)
	}
	e.RunInput(tb, dir, in.Bytes(), "fast-import", "--quiet")
	return dir
}

// AddCommits adds n commits on branch of the bare repository at dir.
func AddCommits(tb testing.TB, e *GitEnv, dir, branch string, n int) {
	tb.Helper()
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "commit refs/heads/%s\ncommitter Test Committer <committer@example.com> %d +0000\n", branch, 1800000000+i)
		msg := fmt.Sprintf("more %d\n", i)
		fmt.Fprintf(&in, "data %d\n%s", len(msg), msg)
		if i == 0 {
			fmt.Fprintf(&in, "from refs/heads/%s^0\n", branch)
		}
		content := sample.FileContent("more-"+branch, i, 500)
		fmt.Fprintf(&in, "M 100644 inline more/file%d.txt\ndata %d\n%s\n", i, len(content), content)
	}
	e.RunInput(tb, dir, in.Bytes(), "fast-import", "--quiet")
}
