// Package etcdtest runs a real etcd server process for tests: free loopback
// ports, a temporary data dir, killed in Cleanup. The binary comes from
// Debian's etcd-server package (or $SITESYNC_ETCD); tests fail, not skip,
// when it is missing, because CI installs it.
package etcdtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// startTimeout bounds how long a starting etcd may take to answer: a cold
// start with an fsync'd WAL on a busy 2-core CI machine takes a second or two.
const startTimeout = 30 * time.Second

// Server is one etcd process.
type Server struct {
	tb       testing.TB
	Endpoint string // http://127.0.0.1:PORT
	DataDir  string
	args     []string
	bin      string

	mu   sync.Mutex // guards cmd and done
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the etcd binary or fails tb with what to install.
func Binary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("SITESYNC_ETCD"); p != "" {
		return p
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd"
	}
	tb.Fatalf("etcd binary not found (PATH, /usr/bin/etcd, $SITESYNC_ETCD): install the Debian package etcd-server (apt-get install etcd-server)")
	return ""
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts etcd and waits until it answers. Cleanup kills it.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := Binary(tb)
	dir := tb.TempDir()
	cport, pport := freePort(tb), freePort(tb)
	client := fmt.Sprintf("http://127.0.0.1:%d", cport)
	peer := fmt.Sprintf("http://127.0.0.1:%d", pport)
	s := &Server{
		tb:       tb,
		bin:      bin,
		Endpoint: client,
		DataDir:  filepath.Join(dir, "data"),
		args: []string{
			"--name", "t",
			"--data-dir", filepath.Join(dir, "data"),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "t=" + peer,
			"--log-level", "error", "--logger", "zap",
		},
	}
	tb.Cleanup(func() { s.Kill() })
	s.Restart()
	return s
}

// Restart starts the process again on the same data dir and ports (after
// Kill) and waits until it answers; it fails the test on error (call it from
// the test goroutine, else use TryRestart).
func (s *Server) Restart() {
	s.tb.Helper()
	if err := s.TryRestart(); err != nil {
		s.tb.Fatal(err)
	}
}

// TryRestart is Restart returning its error, for use off the test goroutine.
func (s *Server) TryRestart() error {
	s.mu.Lock()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH=amd64")
	stderr := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start etcd: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
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
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("etcd exited at start: %s", stderr.String())
		default:
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
