package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/sitesync/sitesync/internal/freeport"
)

// startTimeout bounds how long a starting etcd may take to answer: a cold
// start with an fsync'd WAL on a busy 2-core CI machine takes a second or two.
const startTimeout = 30 * time.Second

// Server is one etcd process.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Addr     string // 127.0.0.1:PORT, the form refdb.endpoints takes
	DataDir  string

	tb      testing.TB // nil for StartProcess
	args    []string
	bin     string
	tempDir string // removed by Close when StartProcess made it

	mu     sync.Mutex // guards cmd, done, stderr, closed
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *lockedBuffer
	closed bool
}

// LookBinary returns the etcd binary: $SITESYNC_ETCD, etcd on PATH, or
// /usr/bin/etcd.
func LookBinary() (string, error) {
	if p := os.Getenv("SITESYNC_ETCD"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd", nil
	}
	return "", errors.New("etcd binary not found (PATH, /usr/bin/etcd, $SITESYNC_ETCD): install the Debian package etcd-server (apt-get install etcd-server)")
}

// Binary returns the etcd binary or fails tb with what to install.
func Binary(tb testing.TB) string {
	tb.Helper()
	p, err := LookBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	addr, err := freeport.Pick("tcp")
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	return strconv.Atoi(port)
}

// Start starts etcd in a directory of tb.TempDir and waits until it answers.
// Cleanup kills it.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := newServer(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	s.tb = tb
	tb.Cleanup(func() { s.Kill() })
	s.Restart()
	return s
}

// StartProcess starts etcd with its data under dir ("" = a new temporary
// directory, removed by Close) and waits until it answers or ctx ends. ctx
// bounds the start only; the process runs until Kill or Close. extra are
// more server flags (e.g. "--max-txn-ops", "10000").
func StartProcess(ctx context.Context, dir string, extra ...string) (*Server, error) {
	temp := ""
	if dir == "" {
		d, err := os.MkdirTemp("", "etcdtest-")
		if err != nil {
			return nil, fmt.Errorf("etcd dir: %w", err)
		}
		dir, temp = d, d
	}
	s, err := newServer(dir)
	if err != nil {
		if temp != "" {
			_ = os.RemoveAll(temp)
		}
		return nil, err
	}
	s.tempDir = temp
	s.args = append(s.args, extra...)
	if err := s.start(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func newServer(dir string) (*Server, error) {
	bin, err := LookBinary()
	if err != nil {
		return nil, err
	}
	cport, err := FreePort()
	if err != nil {
		return nil, err
	}
	pport, err := FreePort()
	if err != nil {
		return nil, err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", cport)
	peer := fmt.Sprintf("http://127.0.0.1:%d", pport)
	data := filepath.Join(dir, "data")
	return &Server{
		bin:      bin,
		Endpoint: client,
		Addr:     fmt.Sprintf("127.0.0.1:%d", cport),
		DataDir:  data,
		args: []string{
			"--name", "t",
			"--data-dir", data,
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "t=" + peer,
			"--log-level", "error", "--logger", "zap",
		},
	}, nil
}

// Restart starts the process again on the same data dir and ports (after
// Kill) and waits until it answers; it fails the test on error. Call it from
// the test goroutine of a Server made by Start; elsewhere use TryRestart.
func (s *Server) Restart() {
	if s.tb == nil {
		panic("etcdtest: Restart on a Server made by StartProcess; use TryRestart")
	}
	s.tb.Helper()
	if err := s.TryRestart(); err != nil {
		s.tb.Fatal(err)
	}
}

// TryRestart is Restart returning its error, for use off the test goroutine
// or without a testing.TB.
func (s *Server) TryRestart() error { return s.start(context.Background()) }

func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("start etcd: server closed")
	}
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("start etcd: already running")
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH=amd64")
	cmd.SysProcAttr = sysProcAttr()
	stderr := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start etcd: %w", err)
	}
	s.cmd, s.done, s.stderr = cmd, make(chan struct{}), stderr
	done := s.done
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Unlock()

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Get(cctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("etcd exited at start: %s", stderr.String())
		default:
		}
		if ctx.Err() != nil {
			return fmt.Errorf("etcd start: %w; stderr: %s", ctx.Err(), stderr.String())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd did not answer within %v: %v; stderr: %s", startTimeout, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill sends SIGKILL and waits for the process to exit. Idempotent.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// Running reports whether the process was started and not killed. A process
// that died by itself still counts until Kill.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Close kills the process and, for a StartProcess server with a temporary
// directory, removes it. Idempotent; no restart is possible after it.
func (s *Server) Close() error {
	s.Kill()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.tempDir != "" {
		if err := os.RemoveAll(s.tempDir); err != nil {
			return fmt.Errorf("remove etcd dir: %w", err)
		}
	}
	return nil
}

// Client returns a client of this server, closed in Cleanup.
func (s *Server) Client(tb testing.TB) *clientv3.Client {
	tb.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		tb.Fatalf("etcd client: %v", err)
	}
	tb.Cleanup(func() { _ = cli.Close() })
	return cli
}

// lockedBuffer collects a process's output for error messages; the process
// writes while a failing start reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

// maxOutput bounds what is kept of etcd's output: a start error needs the
// last lines, not a long-running server's whole log.
const maxOutput = 64 << 10

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if len(l.b) > maxOutput {
		l.b = append(l.b[:0], l.b[len(l.b)-maxOutput:]...)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
