package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// benchStreamSize is the body of one bulk stream in BenchmarkBulk: a large
// pack, well above the windows so the steady state dominates.
const benchStreamSize = 64 << 20

// BenchmarkBulk compares one bulk stream through the mesh with a raw
// quic-go stream over a connection with the same QUIC configuration
// (windows, TLS 1.3, ALPN). One op = open a stream, send 64 MiB in 1 MiB
// writes, close, wait for the receiver's reply. Both paths are set up
// first and measured back to back, so with -count N the pairs interleave and
// load from other processes on the machine hits both alike.
//
//	go test -run XXX -bench BenchmarkBulk -benchtime 20x -count 6 ./transport/
func BenchmarkBulk(b *testing.B) {
	chunk := make([]byte, 1<<20)
	sites := newCluster(b, []string{"a", "b"}, nil)
	sites["b"].m.HandleStream(kindBulk, func(ctx context.Context, from string, hdr []byte, body io.Reader) ([]byte, error) {
		_, err := io.CopyBuffer(io.Discard, body, make([]byte, 1<<20))
		return []byte("ok"), err
	})
	waitMesh(b, sites, 10*time.Second)
	a := sites["a"].m
	qc := rawQUICPair(b)
	ctx := context.Background()

	viaMesh := func(b *testing.B) {
		s, err := a.OpenStream(ctx, "b", kindBulk, nil)
		if err != nil {
			b.Fatal(err)
		}
		for range benchStreamSize / len(chunk) {
			if _, err := s.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.CloseAndWait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	ack := make([]byte, 1)
	viaRaw := func(b *testing.B) {
		str, err := qc.OpenStreamSync(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for range benchStreamSize / len(chunk) {
			if _, err := str.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		_ = str.Close()
		if _, err := io.ReadFull(str, ack); err != nil {
			b.Fatal(err)
		}
	}
	for _, path := range []struct {
		name string
		run  func(*testing.B)
	}{{"mesh", viaMesh}, {"raw", viaRaw}} {
		b.Run("path="+path.name, func(b *testing.B) {
			b.SetBytes(benchStreamSize)
			b.ReportAllocs()
			for b.Loop() {
				path.run(b)
			}
		})
	}
	// Each op sends one stream each way, back to back, and times them
	// separately: the fairest ratio on a machine shared with other work.
	b.Run("path=interleaved", func(b *testing.B) {
		var tMesh, tRaw time.Duration
		for b.Loop() {
			t0 := time.Now()
			viaMesh(b)
			t1 := time.Now()
			viaRaw(b)
			tMesh, tRaw = tMesh+t1.Sub(t0), tRaw+time.Since(t1)
		}
		mb := float64(b.N) * benchStreamSize / 1e6
		b.ReportMetric(mb/tMesh.Seconds(), "mesh-MB/s")
		b.ReportMetric(mb/tRaw.Seconds(), "raw-MB/s")
		b.ReportMetric(tRaw.Seconds()/tMesh.Seconds(), "mesh/raw")
	})
}

// rawQUICPair returns the client end of a plain quic-go connection on
// loopback whose server drains every stream and answers one byte.
func rawQUICPair(tb testing.TB) *quic.Conn {
	tb.Helper()
	dir := certDir(tb, "a", "b")
	qconf := quicConfig(Config{}.withDefaults())
	load := func(site string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, site+".pem"), filepath.Join(dir, site+"-key.pem"))
		require.NoError(tb, err)
		return c
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{load("b")},
		ClientAuth: tls.RequireAnyClientCert, NextProtos: []string{ALPN},
	}, qconf)
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		for {
			str, err := sc.AcceptStream(ctx)
			if err != nil {
				return
			}
			go func() {
				_, _ = io.CopyBuffer(io.Discard, str, make([]byte, 1<<20))
				_, _ = str.Write([]byte{1})
				_ = str.Close()
			}()
		}
	}()
	qc, err := quic.DialAddr(ctx, ln.Addr().String(), &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{load("a")},
		InsecureSkipVerify: true, NextProtos: []string{ALPN},
	}, qconf)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		_ = qc.CloseWithError(0, "")
		cancel()
		_ = ln.Close()
		<-done
	})
	return qc
}

// BenchmarkRequest measures small request/response round trips through the
// mesh on loopback: one at a time (latency) and from many goroutines
// (throughput).
//
//	go test -run XXX -bench BenchmarkRequest ./transport/
func BenchmarkRequest(b *testing.B) {
	sites := newCluster(b, []string{"a", "b"}, nil)
	sites["b"].m.Handle(kindEcho, func(ctx context.Context, from string, p []byte) ([]byte, error) { return p, nil })
	waitMesh(b, sites, 10*time.Second)
	a := sites["a"].m
	payload := make([]byte, 64)
	ctx := context.Background()
	b.Run("mode=serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Request(ctx, "b", kindEcho, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mode=parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := a.Request(ctx, "b", kindEcho, payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkCodec measures framing a typical NoteDb-sized control message.
func BenchmarkCodec(b *testing.B) {
	c := testCodec(b, DefaultMaxFrame)
	for _, size := range []int{600, 21 << 10} {
		body := make([]byte, size)
		for i := range body {
			body[i] = "refs/changes/01/1/meta Patch-set: 1\n"[i%36]
		}
		b.Run("size="+map[int]string{600: "600B", 21 << 10: "21KiB"}[size], func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				f, _ := c.appendFrame(nil, frameRequest, body, true)
				if _, _, err := c.readFrame(bytes.NewReader(f)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
