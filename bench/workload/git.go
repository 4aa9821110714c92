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
	"strconv"
	"strings"

	"github.com/sitesync/sitesync/internal/refmove"
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

// SetRaw sets the Raw size of every update from the repository at dir, which
// must hold every update's objects: one `git rev-list --objects New --not
// Old` per update, then one `git cat-file --batch-check` for every object
// named, so an object several updates bring counts in each.
func (g *Git) SetRaw(ctx context.Context, dir string, updates []Update) error {
	objects := make([][]string, len(updates))
	size := make(map[string]int64)
	var ids strings.Builder
	for i, u := range updates {
		args := []string{"rev-list", "--objects", u.New}
		if u.Old != refmove.ZeroID && u.Old != "" {
			args = append(args, "--not", u.Old)
		}
		out, err := g.Run(ctx, dir, nil, args...)
		if err != nil {
			return fmt.Errorf("raw size of %s: %w", u.Ref, err)
		}
		for line := range strings.Lines(out) {
			id, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			if id == "" {
				continue
			}
			objects[i] = append(objects[i], id)
			if _, ok := size[id]; !ok {
				size[id] = -1
				ids.WriteString(id + "\n")
			}
		}
	}
	if ids.Len() == 0 {
		return nil
	}
	out, err := g.Run(ctx, dir, strings.NewReader(ids.String()), "cat-file", "--batch-check=%(objectname) %(objectsize)")
	if err != nil {
		return fmt.Errorf("raw sizes: %w", err)
	}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) != 2 {
			return fmt.Errorf("raw sizes: cat-file said %q", strings.TrimSpace(line))
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return fmt.Errorf("raw sizes: cat-file said %q: %w", strings.TrimSpace(line), err)
		}
		size[f[0]] = n
	}
	for i := range updates {
		var raw int64
		for _, id := range objects[i] {
			if size[id] < 0 {
				return fmt.Errorf("raw size of %s: object %s missing", updates[i].Ref, id)
			}
			raw += size[id]
		}
		updates[i].Raw = raw
	}
	return nil
}
