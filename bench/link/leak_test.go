package link

import (
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// relayGoroutines counts goroutines running relay code.
func relayGoroutines() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "link.(*TCPRelay)") || strings.Contains(g, "link.(*UDPRelay)") ||
			strings.Contains(g, "link.(*releaseQueue") {
			n++
		}
	}
	return n
}

// TestNoGoroutineLeft stops relays in every state (live mappings, open and
// half-open connections, held bytes of a partition, a connection waiting for
// its handshake) and checks that none of their goroutines outlives Run.
func TestNoGoroutineLeft(t *testing.T) {
	waitFor(t, "relays of earlier tests stopped", eventually, func() bool { return relayGoroutines() == 0 })
	p := Profile{Delay: 20 * time.Millisecond, Bandwidth: 1 << 20}
	l := newLink(t, p, p)
	ur, err := ListenUDP(Config{Listen: "127.0.0.1:0", Target: udpEcho(t), Link: l})
	require.NoError(t, err)
	tr, err := ListenTCP(Config{Listen: "127.0.0.1:0", Target: tcpEcho(t), Link: l})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	uDone, tDone := make(chan error, 1), make(chan error, 1)
	go func() { uDone <- ur.Run(ctx) }()
	go func() { tDone <- tr.Run(context.Background()) }()

	for range 3 {
		c, err := net.Dial("udp4", ur.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write(make([]byte, 1000))
		require.NoError(t, err)
	}
	conns := make([]net.Conn, 3)
	for i := range conns {
		conns[i], err = net.Dial("tcp4", tr.Addr().String())
		require.NoError(t, err)
		defer conns[i].Close()
	}
	// One streaming, one half-closed, one idle.
	_, err = conns[0].Write(make([]byte, 256<<10))
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, conns[0]) }()
	require.NoError(t, conns[1].(*net.TCPConn).CloseWrite())
	waitFor(t, "flows up", eventually, func() bool {
		return ur.Stats().Flows == 3 && tr.Stats().Flows == 3
	})
	l.SetPartition(true)
	late, err := net.Dial("tcp4", tr.Addr().String()) // hangs in the partition
	require.NoError(t, err)
	defer late.Close()
	waitFor(t, "connection held", eventually, func() bool { return tr.Stats().Accepted == 4 })

	require.Greater(t, relayGoroutines(), 10)

	cancel() // the UDP relay stops by its context, the TCP relay by Close
	require.NoError(t, <-uDone)
	require.NoError(t, tr.Close())
	require.NoError(t, <-tDone)
	waitFor(t, "relay goroutines exited", eventually, func() bool { return relayGoroutines() == 0 })
	require.Zero(t, ur.Stats().Flows)
	require.Zero(t, tr.Stats().Flows)
}
