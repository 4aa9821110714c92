package link

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkUDPRelay measures datagram throughput through a relay with no
// impairment (path=relay) against the same traffic straight to the sink
// (path=direct). The sender waits for each batch of datagrams to arrive so
// the socket buffers do not overflow; the few the kernel still drops are
// reported as lost/op.
func BenchmarkUDPRelay(b *testing.B) {
	const size, window = 1200, 128
	for _, path := range []string{"direct", "relay"} {
		b.Run("path="+path+"/size=1200", func(b *testing.B) {
			sink := newUDPSink(b)
			addr := sink.addr
			if path == "relay" {
				addr = udpRelay(b, sink.addr, nil).Addr().String()
			}
			c, err := net.Dial("udp4", addr)
			require.NoError(b, err)
			defer c.Close()
			msg := make([]byte, size)
			b.SetBytes(size)
			b.ReportAllocs()
			var sent, lost uint64
			t := time.NewTimer(time.Hour)
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				sent++
				if sent%window != 0 {
					continue
				}
				// Wait for the batch; give up on stragglers after 20 ms.
				t.Reset(20 * time.Millisecond)
			wait:
				for sink.packets.Load() < sent-lost {
					select {
					case <-sink.notify:
					case <-t.C:
						lost = sent - sink.packets.Load()
						break wait
					}
				}
				t.Stop()
			}
			b.ReportMetric(float64(lost)/float64(sent), "lost/op")
		})
	}
}

// BenchmarkTCPRelay measures stream throughput through a relay with no
// impairment against a direct connection.
func BenchmarkTCPRelay(b *testing.B) {
	const chunk = 32 << 10
	for _, path := range []string{"direct", "relay"} {
		b.Run("path="+path+"/write=32KiB", func(b *testing.B) {
			got := make(chan int64, 1)
			sink := tcpServer(b, func(c net.Conn) {
				n, _ := io.Copy(io.Discard, c)
				got <- n
			})
			addr := sink
			if path == "relay" {
				addr = tcpRelay(b, sink, nil).Addr().String()
			}
			c, err := net.Dial("tcp4", addr)
			require.NoError(b, err)
			defer c.Close()
			msg := make([]byte, chunk)
			b.SetBytes(chunk)
			b.ReportAllocs()
			var n int64
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				n += chunk
			}
			require.NoError(b, c.(*net.TCPConn).CloseWrite())
			require.Equal(b, n, <-got)
		})
	}
}
