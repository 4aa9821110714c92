package hook

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// readTimeout bounds how long a connected hook may take to send its request;
// git writes the whole input at once, so a slow one is stuck or hostile.
const readTimeout = 30 * time.Second

// Server answers hooks on a unix socket.
type Server struct {
	socket  string
	handler Handler
	log     *slog.Logger
}

// NewServer returns a server for the socket path; Run creates the socket.
func NewServer(socket string, h Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{socket: socket, handler: h, log: log.With("component", "hook")}
}

// Socket is the path hooks connect to.
func (s *Server) Socket() string { return s.socket }

// Run serves until ctx ends, then removes the socket and returns after every
// request in progress has been answered or abandoned.
func (s *Server) Run(ctx context.Context) error {
	// A socket left by a daemon that died is stale: nothing can be listening
	// on it, since the state directory belongs to one daemon.
	if err := os.Remove(s.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("hook socket %s: %w", s.socket, err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", s.socket)
	if err != nil {
		return fmt.Errorf("hook socket: %w", err)
	}
	if err := os.Chmod(s.socket, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("hook socket %s: %w", s.socket, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("hook socket: %w", err)
		}
		wg.Go(func() { s.serve(ctx, conn) })
	}
}

func (s *Server) serve(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(readTimeout))
	var req Request
	if err := readMessage(bufio.NewReader(conn), &req); err != nil {
		s.log.Warn("bad hook request", "error", err)
		_ = writeMessage(conn, Response{Lines: []string{"sitesync: bad hook request: " + err.Error()}})
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	// The hook goes away if git is killed: a read that ends tells us so.
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		var b [1]byte
		_, _ = conn.Read(b[:])
		cancel()
	}()
	resp := s.handler(reqCtx, req)
	if err := writeMessage(conn, resp); err != nil {
		s.log.Warn("hook went away before the decision reached it", "git_dir", req.GitDir, "error", err)
	}
}
