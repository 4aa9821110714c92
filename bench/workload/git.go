package workload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Git runs the C git client as a user of the system would, with a fixed
// environment. The zero Git uses the process's environment.
type Git struct {
	// Env is the complete environment of every git process (nil: the
	// process's own).
	Env []string
}

// IsolatedGit returns a Git whose processes see an empty HOME under home, no
// system configuration and fixed identities, so a run does not depend on the
// machine's git configuration (credential helpers, URL rewrites, hooks).
func IsolatedGit(home string) (*Git, error) {
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, fmt.Errorf("git home: %w", err)
	}
	env := append(os.Environ(),
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+filepath.Join(home, ".gitconfig"),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=sitesync bench", "GIT_AUTHOR_EMAIL=bench@sitesync.invalid",
		"GIT_COMMITTER_NAME=sitesync bench", "GIT_COMMITTER_EMAIL=bench@sitesync.invalid",
	)
	return &Git{Env: env}, nil
}

// Command returns git with args run in dir ("" for the current directory).
func (g *Git) Command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = g.Env
	return cmd
}

// Run runs git in dir with stdin (may be nil) and returns its standard
// output; the error carries the command and its standard error.
func (g *Git) Run(ctx context.Context, dir string, stdin io.Reader, args ...string) (string, error) {
	cmd := g.Command(ctx, dir, args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return stdout.String(), fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// RevParse returns the object id rev names in the repository at dir.
func (g *Git) RevParse(ctx context.Context, dir, rev string) (string, error) {
	out, err := g.Run(ctx, dir, nil, "rev-parse", "--verify", "--quiet", rev)
	return strings.TrimSpace(out), err
}

// Configure sets git configuration keys (key, value, key, value …) in the
// repository at dir.
func (g *Git) Configure(ctx context.Context, dir string, kv ...string) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if _, err := g.Run(ctx, dir, nil, "config", kv[i], kv[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// CopyRepo copies the repository at src to dst (which must not exist), file
// by file: unreachable objects are copied too, unlike a clone.
func CopyRepo(src, dst string) error {
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return fmt.Errorf("copy repository %q: %w", src, err)
	}
	return nil
}
