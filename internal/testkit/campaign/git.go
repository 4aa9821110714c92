package campaign

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/sitesync/sitesync/bench/workload"
)

// gitWaitDelay bounds how long a killed git's output pipes may stay open
// (git-remote-http, a child of git, holds them too).
const gitWaitDelay = 5 * time.Second

// gitRunner runs C git with an environment of its own: an empty HOME, no
// system or global configuration, fixed identities.
type gitRunner struct{ env []string }

func newGitRunner(home string) (*gitRunner, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, fmt.Errorf("the campaign needs C git: %w", err)
	}
	// The same isolated environment as the benchmarks' git.
	g, err := workload.IsolatedGit(home)
	if err != nil {
		return nil, err
	}
	return &gitRunner{env: g.Env}, nil
}

// run runs git in dir with stdin (may be nil) and returns stdout, and
// stderr inside the error. ctx ends git and every process it started.
func (g *gitRunner) run(ctx context.Context, dir string, stdin []byte, args ...string) (string, error) {
	out, errOut, err := g.run2(ctx, dir, stdin, args...)
	if err != nil {
		return out, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut))
	}
	return out, nil
}

// run2 is run returning stdout and stderr apart.
func (g *gitRunner) run2(ctx context.Context, dir string, stdin []byte, args ...string) (string, string, error) {
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = g.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = gitWaitDelay
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// refs lists the refs under refs/ of the repository at dir.
func (g *gitRunner) refs(ctx context.Context, dir string) (map[string]string, error) {
	out, err := g.run(ctx, dir, nil, "for-each-ref", "--format=%(objectname) %(refname)", "refs/")
	if err != nil {
		return nil, err
	}
	refs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if id, ref, ok := strings.Cut(line, " "); ok {
			refs[ref] = id
		}
	}
	return refs, nil
}

// missing returns the object names of ids that are not in the repository
// at dir (git cat-file -e for each, in one process).
func (g *gitRunner) missing(ctx context.Context, dir string, ids []string) (map[string]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	in := strings.Join(ids, "\n") + "\n"
	out, err := g.run(ctx, dir, []byte(in), "cat-file", "--batch-check=%(objectname)")
	if err != nil {
		return nil, err
	}
	miss := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if id, ok := strings.CutSuffix(sc.Text(), " missing"); ok {
			miss[id] = true
		}
	}
	return miss, nil
}

// value is ref's value in the repository at dir, "" if it has none.
func (g *gitRunner) value(ctx context.Context, dir, ref string) (string, error) {
	out, errOut, err := g.run2(ctx, dir, nil, "rev-parse", "-q", "--verify", ref)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 && strings.TrimSpace(errOut) == "" {
			return "", nil
		}
		return "", fmt.Errorf("git rev-parse %s: %w: %s", ref, err, strings.TrimSpace(errOut))
	}
	return strings.TrimSpace(out), nil
}

// pushedRef is one line of `git push --porcelain`.
type pushedRef struct {
	Flag    byte   // ' ' fast-forward, '+' forced, '-' deleted, '*' new, '=' up to date, '!' rejected
	From    string // the source of the refspec ("" for a deletion)
	To      string // the remote ref
	Summary string
}

// OK reports whether the remote took the update.
func (p pushedRef) OK() bool { return strings.IndexByte(" +-*", p.Flag) >= 0 }

// Outcome is what a client was told of a write.
type Outcome uint8

const (
	// Unknown: no answer, or one that leaves the outcome open (the refdb
	// unavailable, the connection dropped).
	Unknown Outcome = iota
	// Acked: the write was acknowledged.
	Acked
	// Refused: the write was refused before it was decided (a conflict,
	// the quorum not reached, a non-fast-forward the client itself
	// refused); it must not be in the refdb.
	Refused
)

// unknownSummaries are the words of a rejection that does not say whether
// the write was decided.
var unknownSummaries = []string{"unavailable", "remote failure", "failed to report", "hung up", "timed out", "timeout"}

// Outcome classifies the ref's line.
func (p pushedRef) Outcome() Outcome {
	if p.OK() {
		return Acked
	}
	if p.Flag != '!' {
		return Unknown // '=': nothing was asked
	}
	for _, w := range unknownSummaries {
		if strings.Contains(p.Summary, w) {
			return Unknown
		}
	}
	return Refused
}

// Old is the value the remote had, as far as the summary tells: a prefix
// of an object name, ZeroSHA for a new ref, "" when not told.
func (p pushedRef) Old() string {
	switch p.Flag {
	case '*':
		return ZeroSHA
	case ' ', '+':
		if old, _, ok := strings.Cut(p.Summary, ".."); ok {
			return old
		}
	}
	return ""
}

// parsePorcelain reads the ref lines of `git push --porcelain` output: a
// flag, a tab, from:to, a tab, a summary.
func parsePorcelain(out string) []pushedRef {
	var refs []pushedRef
	for _, line := range strings.Split(out, "\n") {
		if len(line) < 2 || line[1] != '\t' || strings.IndexByte(" +-*=!", line[0]) < 0 {
			continue
		}
		fields := strings.SplitN(line[2:], "\t", 2)
		from, to, ok := strings.Cut(fields[0], ":")
		if !ok {
			continue
		}
		p := pushedRef{Flag: line[0], From: from, To: to}
		if len(fields) == 2 {
			p.Summary = fields[1]
		}
		refs = append(refs, p)
	}
	return refs
}
