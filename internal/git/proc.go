package git

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// proc is a long-lived git process spoken to line by line on stdin/stdout.
// It is started on first use; any failed or cancelled exchange stops it (see
// stop), and the next exchange starts a fresh one. Callers serialise
// exchanges with mu.
type proc struct {
	dir  string
	args []string
	env  []string
	// dirty, when set, is called with mu held after the process died
	// without running its own cleanup (see diedDirty), to remove what it may
	// have left behind; its error is returned with the exchange's.
	dirty func() error

	mu     sync.Mutex
	live   *running // nil: not started
	stdin  *bufio.Writer
	stdout *bufio.Reader
	stderr *limitedBuffer
}

// running is one started process.
type running struct {
	cmd    *exec.Cmd
	in     *os.File // our end of its stdin
	out    *os.File // our end of its stdout
	errs   *os.File // our end of its stderr
	exited chan struct{}
	err    error         // of cmd.Wait, set before exited is closed
	copied chan struct{} // closed when its stderr is in p.stderr
}

func (p *proc) start() (err error) {
	if p.live != nil {
		return nil
	}
	// The process outlives any one request, so it is not bound to a request's
	// context; exchange stops it when that context ends first.
	cmd := command(context.Background(), p.dir, p.env, p.args...)
	// Pipes of our own rather than exec's: Wait, which runs from the start
	// to see the process exit, would close StdoutPipe under a reader still
	// taking git's last reply, and would wait for a copy of stderr that a
	// hook outliving git can hold open, where await has a deadline.
	var ours, theirs [3]*os.File
	defer func() {
		for _, f := range theirs {
			if f != nil {
				f.Close()
			}
		}
		if err != nil {
			for _, f := range ours {
				if f != nil {
					f.Close()
				}
			}
		}
	}()
	for i := range 3 {
		pr, pw, perr := os.Pipe()
		if perr != nil {
			return perr
		}
		if i == 0 { // stdin: git reads
			theirs[i], ours[i] = pr, pw
		} else {
			ours[i], theirs[i] = pr, pw
		}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = theirs[0], theirs[1], theirs[2]
	if serr := cmd.Start(); serr != nil {
		return &Error{Args: p.args, Err: serr}
	}
	r := &running{cmd: cmd, in: ours[0], out: ours[1], errs: ours[2], exited: make(chan struct{}), copied: make(chan struct{})}
	p.stderr = &limitedBuffer{max: maxStderr}
	go func() {
		r.err = cmd.Wait()
		close(r.exited)
	}()
	go func(buf *limitedBuffer) {
		_, _ = io.Copy(buf, r.errs)
		close(r.copied)
	}(p.stderr)
	p.live = r
	p.stdin = bufio.NewWriter(r.in)
	p.stdout = bufio.NewReaderSize(r.out, 64<<10)
	return nil
}

// exchange writes a request with write and reads the reply with read, in the
// process, stopping it if ctx ends first. A reply read whole before the
// process was stopped is returned as read, with p.live nil: callers whose
// state lives in the process (a prepared transaction) check it. The caller
// holds p.mu.
func (p *proc) exchange(ctx context.Context, write func(*bufio.Writer) error, read func(*bufio.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := p.start(); err != nil {
		return err
	}
	// Ask git to stop and close our ends of its pipes, so that the write
	// or read below returns at once whether or not git heeds the signal.
	r := p.live
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(interrupted)
		_ = terminate(r.cmd.Process)
		_ = r.in.Close()
		_ = r.out.Close()
	})
	err := write(p.stdin)
	if err == nil {
		err = p.stdin.Flush()
	}
	if err == nil {
		err = read(p.stdout)
	}
	if !stop() {
		<-interrupted
		stopErr := p.stop()
		if err == nil {
			return stopErr
		}
		return errors.Join(ctx.Err(), err, stopErr)
	}
	var answer interface{ isAnswer() }
	if errors.As(err, &answer) {
		return err // a negative answer from a healthy process
	}
	if err != nil {
		return p.fail(err)
	}
	return nil
}

// fail stops the process after err and returns err with what git said.
func (p *proc) fail(err error) error {
	cleanup := p.stop()
	if msg := strings.TrimSpace(p.stderr.String()); msg != "" {
		err = &Error{Args: p.args, Stderr: msg, Err: err}
	} else {
		err = &Error{Args: p.args, Err: err}
	}
	return errors.Join(err, cleanup)
}

// stop ends the process and waits for it: stdin closed and terminate, then
// SIGKILL if it has not exited after stopGrace. It returns the error of
// p.dirty, if that ran. The caller holds p.mu.
func (p *proc) stop() error {
	if p.live == nil {
		return nil
	}
	_ = p.live.in.Close()
	_ = terminate(p.live.cmd.Process)
	_, err := p.await(stopGrace)
	return err
}

// await waits up to grace for the process to exit, SIGKILLs it if it has
// not, and forgets it. What it wrote to stderr is in p.stderr by then, but
// for a descendant (a hook) that holds stderr open past the grace. It
// returns the error of its Wait and that of p.dirty, which runs if the
// process died without its own cleanup. The caller holds p.mu.
func (p *proc) await(grace time.Duration) (waitErr, cleanupErr error) {
	r := p.live
	t := time.NewTimer(grace)
	defer t.Stop()
	expired := false
	select {
	case <-r.exited:
	case <-t.C:
		expired = true
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
	if !expired {
		select {
		case <-r.copied:
		case <-t.C:
		}
	}
	_ = r.in.Close()
	_ = r.out.Close()
	_ = r.errs.Close() // ends the copy if a descendant still holds stderr
	<-r.copied
	p.live = nil
	if diedDirty(r.cmd.ProcessState) && p.dirty != nil {
		cleanupErr = p.dirty()
	}
	return r.err, cleanupErr
}

// close ends the process politely: closing stdin lets git exit on its own
// (update-ref aborts a transaction still open). One still there after
// stopGrace is stopped.
func (p *proc) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live == nil {
		return nil
	}
	_ = p.live.in.Close()
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-p.live.exited:
	case <-t.C:
		_ = terminate(p.live.cmd.Process)
	}
	waitErr, cleanupErr := p.await(stopGrace)
	if waitErr != nil {
		waitErr = fmt.Errorf("git %s: %w", p.args[0], waitErr)
	}
	return errors.Join(waitErr, cleanupErr)
}
