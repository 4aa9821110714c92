package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StartMarker begins the line written to a site's log before each start of
// its process, so a test can count starts.
const StartMarker = "==== cluster: start"

// startTimeout bounds how long Start waits for /healthz: a cold serve on a
// busy 2-core CI machine opens its refdb and repositories in a second or two.
const startTimeout = 30 * time.Second

// stopTimeout is how long Stop waits after SIGTERM before SIGKILL: serve
// itself gives in-flight requests 30 s (shutdownGrace), so a longer wait
// would only hide a hung shutdown.
const stopTimeout = 30 * time.Second

// waitDelay bounds how long the log copy may run after serve exits (a git
// child that inherited its output and outlives it).
const waitDelay = 5 * time.Second

// tailLines is how much of a log an error or a failed test shows.
const tailLines = 60

// Site is one site of a Cluster: its directories, addresses, config file,
// log file and serve process. Fields are fixed at New. Methods are safe for
// concurrent use; Start, Stop and Kill are serialized.
type Site struct {
	Name       string
	URL        string // http://127.0.0.1:PORT, the site's own front door (no relay)
	HTTPAddr   string // http.listen
	MeshAddr   string // mesh.listen (UDP)
	Dir        string // the site's directory: config, log, repos, state
	Repos      string // site.repos
	State      string // site.state
	ConfigPath string
	LogPath    string

	c  *Cluster
	op sync.Mutex // serializes Start, Stop and Kill

	mu     sync.Mutex // guards the fields below
	cfg    map[string]any
	env    []string // extra environment of serve (Options.Env, SetEnv)
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited and been reaped
	exit   error         // cmd.Wait's result once done is closed
	starts int
}

// GitURL is the URL stock git uses for project at this site.
func (s *Site) GitURL(project string) string { return s.URL + "/" + project + ".git" }

// Running reports whether the site's serve process is alive (started and not
// yet exited).
func (s *Site) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Pid is the process id of the running serve, 0 if none.
func (s *Site) Pid() int {
	if !s.Running() {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Start starts `sitesync serve --config` (after New, Stop or Kill) and waits
// until GET /healthz answers 200. On failure the process is killed and the
// error carries the tail of the log.
func (s *Site) Start() error {
	s.op.Lock()
	defer s.op.Unlock()
	if s.c.closed.Load() {
		return fmt.Errorf("start site %q: cluster closed", s.Name)
	}
	if s.Running() {
		return fmt.Errorf("start site %q: already running", s.Name)
	}
	s.reap()

	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start site %q: %w", s.Name, err)
	}
	s.mu.Lock()
	s.starts++
	n := s.starts
	env := append(os.Environ(), s.env...)
	s.mu.Unlock()
	marker := fmt.Sprintf("%s %d of site %s at %s: %s serve --config %s ====\n",
		StartMarker, n, s.Name, time.Now().Format(time.RFC3339Nano), s.c.bin, s.ConfigPath)
	if _, err := logf.WriteString(marker); err != nil {
		logf.Close()
		return fmt.Errorf("start site %q: log: %w", s.Name, err)
	}
	cmd := exec.Command(s.c.bin, "serve", "--config", s.ConfigPath)
	cmd.Dir = s.Dir
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = waitDelay
	var out io.Writer = logf
	if s.c.log != nil {
		extra := s.c.log.prefixed(s.Name)
		_, _ = extra.Write([]byte(marker))
		out = io.MultiWriter(logf, extra)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start site %q: %w", s.Name, err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.done, s.exit = cmd, done, nil
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		// Whatever serve left in its group (a git child) dies with it. The
		// group id cannot have been reused: a pid stays allocated while a
		// group of that id has members.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		logf.Close()
		s.mu.Lock()
		s.exit = err
		s.mu.Unlock()
		close(done)
	}()

	if err := s.waitHealthy(done); err != nil {
		s.kill()
		s.reap() // the failure is reported here, not again by Stop or Close
		return fmt.Errorf("start site %q: %w\n--- %s (last %d lines) ---\n%s", s.Name, err, s.LogPath, tailLines, s.LogTail(tailLines))
	}
	return nil
}

func (s *Site) waitHealthy(done <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	var last error
	for {
		resp, err := client.Get(s.URL + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /healthz: %s", resp.Status)
		}
		last = err
		select {
		case <-done:
			s.mu.Lock()
			exit := s.exit
			s.mu.Unlock()
			return fmt.Errorf("serve exited at start: %v", exit)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no healthy answer within %v: %w", startTimeout, last)
		}
	}
}

// Stop sends SIGTERM and waits for serve to exit (SIGKILL after 30 s). It
// returns an error if serve exited with a failure (after SIGTERM serve exits
// 0) or had to be killed. Stopping a stopped site does nothing.
func (s *Site) Stop() error { return s.stop(stopTimeout) }

func (s *Site) stop(grace time.Duration) error {
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		s.kill()
		s.reap()
		return fmt.Errorf("stop site %q: still running %v after SIGTERM; killed", s.Name, grace)
	}
	exit := s.reap()
	if exit != nil {
		return fmt.Errorf("stop site %q: serve: %w", s.Name, exit)
	}
	return nil
}

// Kill sends SIGKILL to serve (and its process group) and waits until it has
// exited, like a machine crash. Killing a stopped site does nothing.
func (s *Site) Kill() error {
	s.op.Lock()
	defer s.op.Unlock()
	s.kill()
	s.reap()
	return nil
}

// kill SIGKILLs the process group and waits for the exit. Caller holds op.
func (s *Site) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// reap forgets an exited process and returns its exit error. Caller holds op.
func (s *Site) reap() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	select {
	case <-s.done:
	default:
		return nil // still running
	}
	exit := s.exit
	s.cmd, s.done, s.exit = nil, nil, nil
	return exit
}

// SetEnv replaces the extra environment variables (KEY=VALUE) of the
// site's serve from its next Start on; a running serve keeps its own.
func (s *Site) SetEnv(env ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.env = append([]string(nil), env...)
}

// Config returns a deep copy of the site's current config tree.
func (s *Site) Config() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return deepCopy(s.cfg).(map[string]any)
}

// EditConfig applies edit to the site's config tree and rewrites its file,
// renaming it into place, so a running serve reloads it (replication, shard
// and notedb apply live; other keys take a restart). If the tree cannot be
// written the file and the tree stay as they were.
func (s *Site) EditConfig(edit func(cfg map[string]any)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := deepCopy(s.cfg).(map[string]any)
	edit(next)
	if err := writeConfig(s.ConfigPath, next); err != nil {
		return fmt.Errorf("edit config of site %q: %w", s.Name, err)
	}
	s.cfg = next
	return nil
}

// ReadLog returns the site's whole log file (every start so far).
func (s *Site) ReadLog() string {
	b, _ := os.ReadFile(s.LogPath)
	return string(b)
}

// LogTail returns the last n lines of the site's log.
func (s *Site) LogTail(n int) string {
	b, _ := os.ReadFile(s.LogPath)
	b = bytes.TrimRight(b, "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// WaitLog waits until the site's log contains substr at least count times,
// or ctx ends.
func (s *Site) WaitLog(ctx context.Context, substr string, count int) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if strings.Count(s.ReadLog(), substr) >= count {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("site %q log: %d× %q: %w", s.Name, count, substr, ctx.Err())
		case <-t.C:
		}
	}
}

// writeConfig writes tree as YAML to a temporary file beside path and renames
// it into place (a reader never sees half a file).
func writeConfig(path string, tree map[string]any) error {
	b, err := marshalYAML(tree)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// deepCopy copies the maps and slices of a config tree so an edit cannot
// alias the tree the site holds.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = deepCopy(x)
		}
		return s
	case []string:
		return append([]string(nil), v...)
	default:
		return v
	}
}

// logSink copies every site's output to Options.Log, each line prefixed by
// its site's name; one lock keeps lines of different sites whole.
type logSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logSink) prefixed(site string) io.Writer {
	return &linePrefixer{sink: l, prefix: site + " | "}
}

// linePrefixer is one process's stream to a logSink: it holds a partial line
// until its newline arrives.
type linePrefixer struct {
	sink    *logSink
	prefix  string
	mu      sync.Mutex
	partial []byte
}

func (p *linePrefixer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	var out bytes.Buffer
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		out.WriteString(p.prefix)
		out.Write(p.partial[:i+1])
		p.partial = p.partial[i+1:]
	}
	if out.Len() > 0 {
		p.sink.mu.Lock()
		_, _ = p.sink.w.Write(out.Bytes()) // a failing extra log must not stop the site
		p.sink.mu.Unlock()
	}
	return len(b), nil
}
