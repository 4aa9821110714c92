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
	"syscall"
	"time"
)

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

// stopGrace is how long a git process that sitesync stops has to exit on
// its own before it is SIGKILLed. git handles SIGTERM (and SIGINT, SIGHUP,
// SIGQUIT, SIGPIPE) by unlinking its lock and temporary files — one unlink
// each, milliseconds even for a transaction of thousands of refs — and
// exiting; a git still there after 3 s is not coming back (uninterruptible
// I/O, or waiting on a child that ignores SIGTERM). SIGKILL is the fallback
// because it leaves those files behind, and every later write of a locked ref
// fails until they go.
const stopGrace = 3 * time.Second

// command builds a git command run in dir with extra environment entries.
// When ctx ends, git is stopped so that it cleans up: terminate, then, if it
// has not exited after stopGrace (WaitDelay), SIGKILL. A git that exited
// ends Wait at once; the WaitDelay also bounds how long Wait then waits for
// a descendant (a hook's background job) that still holds git's pipes.
func command(ctx context.Context, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), baseEnv...), env...)
	cmd.Cancel = func() error { return terminate(cmd.Process) }
	cmd.WaitDelay = stopGrace
	return cmd
}

// terminate asks git to stop: SIGTERM, on which git removes its lock files
// and exits, and SIGCONT, so that a git stopped by SIGSTOP gets to run its
// handler instead of being SIGKILLed after the grace. Signals go through
// os.Process, which fails once the process has been reaped, so they never
// reach a process that reused the pid.
func terminate(p *os.Process) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	_ = p.Signal(syscall.SIGCONT)
	return nil
}

// diedDirty reports whether a reaped git died in a way that skipped its
// cleanup, so that its lock files may still be there: a signal git does not
// handle, SIGKILL above all (ours after stopGrace, or another's such as the
// OOM killer's).
func diedDirty(state *os.ProcessState) bool {
	if state == nil {
		return false
	}
	ws, ok := state.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return false // exited: die() and exit() run git's cleanup too
	}
	switch ws.Signal() {
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE:
		return false // sigchain_push_common: git's tempfile handler ran
	}
	return true
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
// *Error carrying its stderr when it fails. When ctx ends first, git is
// stopped (see command) and run returns within stopGrace.
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
