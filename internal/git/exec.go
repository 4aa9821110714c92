package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// ZeroID is the object id git uses for "no object": a ref that does not exist.
const ZeroID = "0000000000000000000000000000000000000000"

// maxStderr bounds how much of a git process's standard error is kept for an
// error message; git's own messages are a few lines.
const maxStderr = 64 << 10

// Error is a git process that failed: the command and what it said.
type Error struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *Error) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		return fmt.Sprintf("git %s: %v", strings.Join(e.Args, " "), e.Err)
	}
	return fmt.Sprintf("git %s: %v: %s", strings.Join(e.Args, " "), e.Err, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Env entries added to every git process: git must never stop to ask a
// person for anything, and a repository's hooks see that sitesync runs them.
var baseEnv = []string{"GIT_TERMINAL_PROMPT=0"}

// command builds a git command run in dir with extra environment entries.
func command(ctx context.Context, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), baseEnv...), env...)
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	return cmd
}

// limitedBuffer keeps the first max bytes written to it and drops the rest.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return b.buf.String() }

// run runs git to completion with stdin and stdout as given and returns an
// *Error carrying its stderr when it fails.
func run(ctx context.Context, dir string, env []string, stdin io.Reader, stdout io.Writer, args ...string) error {
	cmd := command(ctx, dir, env, args...)
	cmd.Stdin = stdin
	cmd.Stdout = stdout
	stderr := &limitedBuffer{max: maxStderr}
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return &Error{Args: args, Stderr: stderr.String(), Err: err}
	}
	return nil
}

// output runs git and returns its standard output.
func output(ctx context.Context, dir string, args ...string) ([]byte, error) {
	var out bytes.Buffer
	err := run(ctx, dir, nil, nil, &out, args...)
	return out.Bytes(), err
}
