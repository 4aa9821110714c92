package hook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/refmove"
)

// MaxMessage bounds one request or response. A push of every ref of a large
// Gerrit repository (a few hundred thousand refs at ~100 bytes) fits.
const MaxMessage = 64 << 20

// Environment variables that tie a hook to its daemon.
const (
	// EnvSocket names the daemon's socket; set by the daemon for the git
	// processes it runs, or baked into installed hook scripts.
	EnvSocket = "SITESYNC_SOCKET"
	// EnvApplying is set on git processes with which the daemon itself
	// applies an already decided write; the hook then lets them through.
	EnvApplying = "SITESYNC_APPLYING"
	// EnvTxn carries the daemon's transaction id for a push it runs.
	EnvTxn = "SITESYNC_TXN"
	// EnvDecided names a file the daemon creates once every ref of the
	// push it runs was decided (and removes when the push ends): while it
	// exists, the push's later "prepared" calls (git runs one per ref of a
	// non-atomic push) are answered yes without asking, so a push of N
	// refs does not start sitesync N times.
	EnvDecided = "SITESYNC_DECIDED"
)

// Hook names as git knows them.
const (
	PreReceive           = "pre-receive"
	ReferenceTransaction = "reference-transaction"
	// UpdateHook is git's per-ref "update" hook (refname old new): in a
	// non-atomic push, the one way to refuse one ref and let the others
	// through (a refusing reference-transaction hook makes git 2.39's
	// receive-pack die).
	UpdateHook = "update"
)

// Phases of the reference-transaction hook.
const (
	Prepared  = "prepared"
	Committed = "committed"
	Aborted   = "aborted"
)

// Update is one line of hook input: a ref moving from Old to New
// (refmove.Update).
type Update = refmove.Update

// Request is what a hook asks the daemon.
type Request struct {
	Hook       string   `json:"hook"`            // PreReceive or ReferenceTransaction
	Phase      string   `json:"phase,omitempty"` // for ReferenceTransaction
	GitDir     string   `json:"git_dir"`         // absolute repository directory
	Quarantine string   `json:"quarantine,omitempty"`
	Txn        string   `json:"txn,omitempty"` // EnvTxn of the git process, if any
	Updates    []Update `json:"updates"`
}

// Response is the daemon's decision. Lines are shown to the git user.
type Response struct {
	OK    bool     `json:"ok"`
	Lines []string `json:"lines,omitempty"`
}

// Handler decides a hook request. It is called on its own goroutine per
// connection; ctx ends when the daemon stops or the hook goes away.
type Handler func(ctx context.Context, req Request) Response

// mustDecide reports whether git honours the hook's exit status, so that a
// failure to reach the daemon must stop the write.
func (r Request) mustDecide() bool {
	return r.Hook == PreReceive || r.Hook == UpdateHook || r.Phase == Prepared
}

// ParseUpdates reads git's hook input: "<old> <new> <ref>" per line.
func ParseUpdates(r io.Reader) ([]Update, error) {
	var ups []Update
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 || !git.IsID(f[0]) || !git.IsID(f[1]) || f[2] == "" {
			return nil, fmt.Errorf("malformed hook input line %q", line)
		}
		ups = append(ups, Update{Old: f[0], New: f[1], Ref: f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read hook input: %w", err)
	}
	return ups, nil
}

// Call sends req to the daemon at socket and returns its response.
func Call(ctx context.Context, socket string, req Request) (Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return Response{}, fmt.Errorf("reach the sitesync daemon at %s: %w", socket, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if err := writeMessage(conn, req); err != nil {
		return Response{}, fmt.Errorf("send to the sitesync daemon: %w", err)
	}
	var resp Response
	if err := readMessage(bufio.NewReader(conn), &resp); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return Response{}, fmt.Errorf("wait for the sitesync daemon: %w", err)
	}
	return resp, nil
}

// decided reports whether the marker file of EnvDecided exists.
func decided(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return err == nil
}

// Run is the body of a git hook: it reads git's input from stdin, asks the
// daemon, writes the lines for the user to stderr and returns the exit
// status. args are the hook's arguments (the phase, for
// reference-transaction); env looks up environment variables.
func Run(ctx context.Context, hookName string, args []string, stdin io.Reader, stderr io.Writer, env func(string) string) int {
	say := func(format string, a ...any) { fmt.Fprintf(stderr, "sitesync: "+format+"\n", a...) }
	req := Request{Hook: hookName, Quarantine: env("GIT_QUARANTINE_PATH"), Txn: env(EnvTxn)}
	switch hookName {
	case PreReceive:
	case ReferenceTransaction:
		if len(args) != 1 {
			say("reference-transaction hook wants one argument, the phase; got %d", len(args))
			return 1
		}
		req.Phase = args[0]
	case UpdateHook:
		if len(args) != 3 {
			say("update hook wants three arguments (ref, old, new); got %d", len(args))
			return 1
		}
		if req.Txn == "" || decided(env(EnvDecided)) {
			// Not a push sitesync runs (reference-transaction decides
			// it), or one whose every ref was decided.
			return 0
		}
	default:
		say("unknown hook %q", hookName)
		return 1
	}
	if hookName == UpdateHook {
		req.Updates = []Update{{Ref: args[0], Old: args[1], New: args[2]}}
	} else {
		ups, err := ParseUpdates(stdin)
		if err != nil {
			say("%v", err)
			return exitFor(req)
		}
		req.Updates = ups
	}
	if env(EnvApplying) != "" {
		return 0 // the daemon's own write of a decided transaction
	}
	if req.Phase == Prepared && decided(env(EnvDecided)) {
		return 0 // a ref of a push whose every ref was decided
	}
	if hookName == ReferenceTransaction && packRefsBookkeeping(req.Updates) && ranByPackRefs(os.Getppid()) {
		return 0 // moves no ref value: nothing to decide (see packrefs.go)
	}
	if !dieWithParent() {
		say("git went away before its %s hook asked sitesync", hookName)
		return exitFor(req)
	}
	socket := env(EnvSocket)
	if socket == "" {
		say("%s is not set: this hook must be run by git for a repository served with sitesync", EnvSocket)
		return exitFor(req)
	}
	dir, err := gitDir(env)
	if err != nil {
		say("%v", err)
		return exitFor(req)
	}
	req.GitDir = dir
	resp, err := Call(ctx, socket, req)
	if err != nil {
		say("%v", err)
		return exitFor(req)
	}
	for _, line := range resp.Lines {
		fmt.Fprintln(stderr, line)
	}
	if !resp.OK {
		return 1
	}
	return 0
}

// exitFor is the status of a hook that could not get a decision.
func exitFor(req Request) int {
	if req.mustDecide() {
		return 1
	}
	return 0
}

// gitDir finds the repository the hook runs in: GIT_DIR, relative to the
// working directory git starts hooks in.
func gitDir(env func(string) string) (string, error) {
	dir := env("GIT_DIR")
	if dir == "" {
		dir = "."
	}
	if !filepath.IsAbs(dir) {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("find the repository: %w", err)
		}
		dir = filepath.Join(wd, dir)
	}
	return filepath.Clean(dir), nil
}

func writeMessage(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) >= MaxMessage {
		return fmt.Errorf("message of %d bytes exceeds the %d limit", len(b), MaxMessage)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// readMessage reads one newline-terminated JSON message of at most
// MaxMessage bytes.
func readMessage(r *bufio.Reader, v any) error {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > MaxMessage {
			return fmt.Errorf("message exceeds the %d byte limit", MaxMessage)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(buf))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed message: %w", err)
	}
	return nil
}
