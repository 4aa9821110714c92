package git

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
)

// proc is a long-lived git process spoken to line by line on stdin/stdout.
// It is started on first use; any failed or cancelled exchange kills it, and
// the next exchange starts a fresh one. Callers serialise exchanges with mu.
type proc struct {
	dir  string
	args []string
	env  []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  *bufio.Writer
	pipe   io.WriteCloser
	stdout *bufio.Reader
	stderr *limitedBuffer
}

func (p *proc) start() error {
	if p.cmd != nil {
		return nil
	}
	// The process outlives any one request, so it is not bound to a request's
	// context; exchange kills it when that context ends first.
	cmd := command(context.Background(), p.dir, p.env, p.args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	p.stderr = &limitedBuffer{max: maxStderr}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return &Error{Args: p.args, Err: err}
	}
	p.cmd, p.pipe = cmd, in
	p.stdin = bufio.NewWriter(in)
	p.stdout = bufio.NewReaderSize(out, 64<<10)
	return nil
}

// exchange writes a request with write and reads the reply with read, in the
// process, killing it if ctx ends first. The caller holds p.mu.
func (p *proc) exchange(ctx context.Context, write func(*bufio.Writer) error, read func(*bufio.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := p.start(); err != nil {
		return err
	}
	cmd := p.cmd // kill may clear p.cmd while the AfterFunc runs
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	err := write(p.stdin)
	if err == nil {
		err = p.stdin.Flush()
	}
	if err == nil {
		err = read(p.stdout)
	}
	if !stop() || ctx.Err() != nil {
		p.kill()
		return errors.Join(ctx.Err(), err)
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

// fail ends the process after err and returns err with what git said.
func (p *proc) fail(err error) error {
	p.kill()
	if msg := strings.TrimSpace(p.stderr.String()); msg != "" {
		return &Error{Args: p.args, Stderr: msg, Err: err}
	}
	return &Error{Args: p.args, Err: err}
}

// kill ends the process and waits for it. The caller holds p.mu.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.pipe.Close()
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

// close ends the process politely: closing stdin lets git exit on its own.
func (p *proc) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	_ = p.pipe.Close()
	err := p.cmd.Wait()
	p.cmd = nil
	if err != nil {
		return fmt.Errorf("git %s: %w", p.args[0], err)
	}
	return nil
}
