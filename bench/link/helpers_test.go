package link

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serve runs r until the test ends and checks that Run returns cleanly.
func serve(tb testing.TB, r Relay) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("relay run: %v", err)
		}
	})
}

func newLink(tb testing.TB, ab, ba Profile) *Link {
	tb.Helper()
	l, err := NewLink(ab, ba)
	require.NoError(tb, err)
	return l
}

func udpRelay(tb testing.TB, target string, l *Link) *UDPRelay {
	tb.Helper()
	r, err := ListenUDP(Config{Listen: "127.0.0.1:0", Target: target, Link: l})
	require.NoError(tb, err)
	serve(tb, r)
	return r
}

func tcpRelay(tb testing.TB, target string, l *Link) *TCPRelay {
	tb.Helper()
	r, err := ListenTCP(Config{Listen: "127.0.0.1:0", Target: target, Link: l})
	require.NoError(tb, err)
	serve(tb, r)
	return r
}

// udpEcho serves a UDP echo on loopback until the test ends.
func udpEcho(tb testing.TB) string {
	tb.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(tb, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				_, _ = c.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	}()
	tb.Cleanup(func() { c.Close(); <-done })
	return c.LocalAddr().String()
}

// udpSink counts datagrams received on loopback until the test ends.
type udpSink struct {
	addr         string
	packets      atomic.Uint64
	bytes        atomic.Uint64
	mu           sync.Mutex
	first, last  time.Time
	firstPayload int
	notify       chan struct{} // a token after each datagram
}

func newUDPSink(tb testing.TB) *udpSink {
	tb.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(tb, err)
	_ = c.SetReadBuffer(4 << 20)
	s := &udpSink{addr: c.LocalAddr().String(), notify: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxDatagram)
		for {
			n, err := c.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			now := time.Now()
			s.mu.Lock()
			if s.first.IsZero() {
				s.first, s.firstPayload = now, n
			}
			s.last = now
			s.mu.Unlock()
			s.bytes.Add(uint64(n))
			s.packets.Add(1)
			select {
			case s.notify <- struct{}{}:
			default:
			}
		}
	}()
	tb.Cleanup(func() { c.Close(); <-done })
	return s
}

// tcpEcho serves a TCP echo on loopback until the test ends.
func tcpEcho(tb testing.TB) string {
	tb.Helper()
	return tcpServer(tb, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

// tcpServer runs handle for each connection until the test ends.
func tcpServer(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(tb, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); handle(c) }()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	require.Eventually(tb, cond, timeout, 2*time.Millisecond, what)
}
