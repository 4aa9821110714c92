package link

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// whoami serves UDP on loopback and answers every datagram with the address
// it came from.
func whoami(tb testing.TB) string {
	tb.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(tb, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			_, from, err := c.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			_, _ = c.WriteToUDPAddrPort([]byte(from.String()), from)
		}
	}()
	tb.Cleanup(func() { c.Close(); <-done })
	return c.LocalAddr().String()
}

func ask(t *testing.T, c net.Conn) string {
	t.Helper()
	_, err := c.Write([]byte("?"))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(2*time.Second)))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	require.NoError(t, err)
	return string(buf[:n])
}

// TestUDPMapping checks that each client gets an upstream socket of its own,
// kept while it is in use, so replies reach the right client.
func TestUDPMapping(t *testing.T) {
	r := udpRelay(t, whoami(t), nil)
	c1, err := net.Dial("udp4", r.Addr().String())
	require.NoError(t, err)
	defer c1.Close()
	c2, err := net.Dial("udp4", r.Addr().String())
	require.NoError(t, err)
	defer c2.Close()

	up1, up2 := ask(t, c1), ask(t, c2)
	require.NotEqual(t, up1, up2, "one upstream address per client")
	require.Equal(t, up1, ask(t, c1), "the mapping is kept")
	require.Equal(t, up2, ask(t, c2))
	// A counter moves just after its write, which the echo can overtake.
	waitFor(t, "counters", eventually, func() bool {
		s := r.Stats()
		return s.AtoB.Packets == 4 && s.BtoA.Packets == 4
	})
	s := r.Stats()
	require.EqualValues(t, 2, s.Flows)
	require.EqualValues(t, 2, s.Accepted)
}

func TestUDPMappingExpires(t *testing.T) {
	r, err := ListenUDP(Config{Listen: "127.0.0.1:0", Target: whoami(t)})
	require.NoError(t, err)
	r.idle = 40 * time.Millisecond
	serve(t, r)
	c, err := net.Dial("udp4", r.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	ask(t, c)
	waitFor(t, "idle mapping closed", eventually, func() bool { return r.Stats().Flows == 0 })
	// The client comes back: a new mapping is made.
	ask(t, c)
	require.EqualValues(t, 1, r.Stats().Flows)
	require.EqualValues(t, 2, r.Stats().Accepted)
}

// TestTCPHalfClose: a client that closes its sending side still gets the
// whole answer.
func TestTCPHalfClose(t *testing.T) {
	srv := tcpServer(t, func(c net.Conn) {
		req, err := io.ReadAll(c)
		if err != nil {
			return
		}
		_, _ = c.Write(append([]byte("re: "), req...))
	})
	p := Profile{Delay: 20 * time.Millisecond}
	r := tcpRelay(t, srv, newLink(t, p, p))
	c, err := net.Dial("tcp4", r.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	start := time.Now()
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, "re: hello", string(got))
	// The request and its answer cross the link: one RTT at least. (The
	// relay's own handshake upstream, a second RTT, may start before the
	// clock does: Dial returns once the relay accepted, and it dials the
	// server at once; a 76 ms run failed an 80 ms bound under load.)
	require.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond-rttTolerance)
	waitFor(t, "connection closed at the relay", eventually, func() bool { return r.Stats().Flows == 0 })
}

// TestTCPHandshake: the first answer on a new connection takes two RTTs, the
// next ones one.
func TestTCPHandshake(t *testing.T) {
	l := newLink(t, Profile{Delay: 15 * time.Millisecond}, Profile{Delay: 25 * time.Millisecond})
	r := tcpRelay(t, tcpEcho(t), l)
	requireWithin(t, "first round trip", float64(80*time.Millisecond), float64(rttTolerance), func() (float64, string) {
		start := time.Now()
		c, err := net.Dial("tcp4", r.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = c.Write([]byte("x"))
		require.NoError(t, err)
		_, err = io.ReadFull(c, make([]byte, 1))
		require.NoError(t, err)
		first := time.Since(start)
		return float64(first), "connect to first answer " + first.String() + " (want 80ms)"
	})
}

// TestQUICThroughLossyRelay runs a real QUIC connection through a relay with
// delay, jitter and loss: every byte of a stream arrives, in order.
func TestQUICThroughLossyRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srvTLS, cliTLS := quicTLS(t)
	ln, err := quic.ListenAddr("127.0.0.1:0", srvTLS, nil)
	require.NoError(t, err)
	defer ln.Close()
	p := Profile{Delay: 10 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.03, Bandwidth: 100e6 / 8}
	r := udpRelay(t, ln.Addr().String(), newLink(t, p, p))

	const size = 512 << 10
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	type result struct {
		sum [32]byte
		n   int
		err error
	}
	got := make(chan result, 1)
	go func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer conn.CloseWithError(0, "")
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			got <- result{err: err}
			return
		}
		b, err := io.ReadAll(s)
		got <- result{sha256.Sum256(b), len(b), err}
		s.Close()
	}()
	conn, err := quic.DialAddr(ctx, r.Addr().String(), cliTLS, nil)
	require.NoError(t, err)
	defer conn.CloseWithError(0, "")
	s, err := conn.OpenStreamSync(ctx)
	require.NoError(t, err)
	_, err = s.Write(payload)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	res := <-got
	require.NoError(t, res.err)
	require.Equal(t, size, res.n)
	require.Equal(t, sha256.Sum256(payload), res.sum)
	st := r.Stats()
	t.Logf("relay: a->b %d datagrams, %d lost; b->a %d datagrams, %d lost", st.AtoB.Packets, st.AtoB.DropLoss, st.BtoA.Packets, st.BtoA.DropLoss)
	require.NotZero(t, st.AtoB.DropLoss+st.BtoA.DropLoss, "QUIC recovered from real losses")
}

// quicTLS returns a server config with a fresh self-signed certificate for
// 127.0.0.1 and a client config trusting it.
func quicTLS(tb testing.TB) (*tls.Config, *tls.Config) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(tb, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(tb, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	const proto = "sitesync-link-test"
	srv := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{proto},
	}
	cli := &tls.Config{RootCAs: pool, NextProtos: []string{proto}, ServerName: "127.0.0.1"}
	return srv, cli
}
