package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rateTolerance is how close a measured rate must be to the configured cap.
const rateTolerance = 0.10

func TestTCPBandwidth(t *testing.T) {
	tests := []struct {
		name  string
		bw    int64 // bytes/s
		delay time.Duration
		size  int
	}{
		{name: "bw=20Mbit", bw: 20e6 / 8, size: 4 << 20},
		{name: "bw=20Mbit,delay=30ms", bw: 20e6 / 8, delay: 30 * time.Millisecond, size: 3 << 20},
		{name: "bw=100Mbit", bw: 100e6 / 8, size: 8 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireWithin(t, "rate", float64(tt.bw), float64(tt.bw)*rateTolerance, func() (float64, string) {
				return tcpTransfer(t, tt.bw, tt.delay, tt.size)
			})
		})
	}
}

// tcpTransfer sends size bytes through a relay limited to bw and returns the
// rate measured at the receiver.
func tcpTransfer(t *testing.T, bw int64, delay time.Duration, size int) (float64, string) {
	type result struct {
		n   int64
		end time.Time
		err error
	}
	got := make(chan result, 1)
	sink := tcpServer(t, func(c net.Conn) {
		n, err := io.Copy(io.Discard, c)
		got <- result{n, time.Now(), err}
	})
	p := Profile{Delay: delay, Bandwidth: bw}
	r := tcpRelay(t, sink, newLink(t, p, p))
	c, err := net.Dial("tcp4", r.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	_, err = c.Write(make([]byte, size))
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	var res result
	select {
	case res = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("transfer did not finish in 30s")
	}
	require.NoError(t, res.err)
	require.EqualValues(t, size, res.n)
	// The connection costs one RTT, the last byte arrives one delay after
	// it was serialized.
	el := res.end.Sub(start) - 3*delay
	rate := float64(size) / el.Seconds()
	return rate, fmt.Sprintf("%d bytes in %v: %.3f Mbit/s (cap %.3f Mbit/s)", size, el, rate*8/1e6, float64(bw)*8/1e6)
}

func TestUDPBandwidth(t *testing.T) {
	const (
		bw      = 20e6 / 8 // bytes/s
		size    = 1200     // bytes per datagram, a QUIC-sized packet
		packets = 2500     // ~1.2 s of traffic at the cap
		over    = 1.25     // the sender offers 25% more than the cap
	)
	requireWithin(t, "rate", bw, bw*rateTolerance, func() (float64, string) {
		sink := newUDPSink(t)
		r := udpRelay(t, sink.addr, newLink(t, Profile{Bandwidth: bw}, Profile{}))
		c, err := net.Dial("udp4", r.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		interval := time.Duration(float64(time.Second) * size / (bw * over))
		start := time.Now()
		msg := make([]byte, size)
		for i := range packets {
			// Pace on an absolute schedule so the offered rate is exact on
			// average.
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			_, err := c.Write(msg)
			require.NoError(t, err)
		}
		waitFor(t, "every datagram delivered or dropped", 10*time.Second, func() bool {
			s := r.Stats().AtoB
			return s.Packets+s.Drops() == packets && sink.packets.Load() == s.Packets
		})
		s := r.Stats().AtoB
		require.NotZero(t, s.DropQueue, "an overdriven link drops at its queue")
		require.Equal(t, s.DropQueue, s.Drops(), "only queue drops")
		sink.mu.Lock()
		el := sink.last.Sub(sink.first)
		bytes := sink.bytes.Load() - uint64(sink.firstPayload)
		sink.mu.Unlock()
		rate := float64(bytes) / el.Seconds()
		return rate, fmt.Sprintf("delivered %d, dropped at the full queue %d; %.3f Mbit/s (cap %.3f Mbit/s)",
			s.Packets, s.DropQueue, rate*8/1e6, bw*8/1e6)
	})
}

func TestUDPLoss(t *testing.T) {
	const n = 5000
	for _, loss := range []float64{0.01, 0.1, 0.3} {
		t.Run("loss="+fmtFloat(loss), func(t *testing.T) {
			sink := newUDPSink(t)
			r := udpRelay(t, sink.addr, newLink(t, Profile{Loss: loss}, Profile{}))
			c, err := net.Dial("udp4", r.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			msg := make([]byte, 100)
			// Batches keep the socket buffers from overflowing, so every
			// loss counted is the emulator's.
			for sent := 0; sent < n; {
				for range 100 {
					_, err := c.Write(msg)
					require.NoError(t, err)
					sent++
				}
				waitFor(t, "batch through the relay", 5*time.Second, func() bool {
					s := r.Stats().AtoB
					return s.Packets+s.Drops() == uint64(sent)
				})
			}
			s := r.Stats().AtoB
			waitFor(t, "sink got every delivered datagram", 5*time.Second, func() bool { return sink.packets.Load() == s.Packets })
			got := float64(s.DropLoss) / n
			// Four standard deviations of a binomial proportion: a false
			// failure once in ~15,000 runs.
			tol := 4 * math.Sqrt(loss*(1-loss)/n)
			t.Logf("lost %d of %d = %.4f (want %.2f ± %.4f)", s.DropLoss, n, got, loss, tol)
			require.InDelta(t, loss, got, tol)
			require.Equal(t, s.DropLoss, s.Drops(), "only loss drops")
		})
	}
}

func fmtFloat(f float64) string { return Profile{Loss: f}.String()[len("delay=0s,loss="):] }

func TestUDPPartition(t *testing.T) {
	echo := udpEcho(t)
	// Long enough that the datagram below is surely still in flight when
	// the link is cut, even on a loaded machine.
	p := Profile{Delay: 100 * time.Millisecond}
	l := newLink(t, p, p)
	r := udpRelay(t, echo, l)
	c, err := net.Dial("udp4", r.Addr().String())
	require.NoError(t, err)
	defer c.Close()

	// ping sends seq and reports whether its echo came back within wait.
	buf := make([]byte, 64)
	ping := func(seq uint64, wait time.Duration) bool {
		_, err := c.Write(binary.BigEndian.AppendUint64(nil, seq))
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
		for {
			n, err := c.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return false
			}
			require.NoError(t, err)
			if n == 8 && binary.BigEndian.Uint64(buf) == seq {
				return true
			}
		}
	}
	seq := uint64(0)
	require.True(t, ping(seq, 10*time.Second), "echo before the partition")

	// A datagram in flight when the link is cut is lost too.
	seq++
	_, err = c.Write(binary.BigEndian.AppendUint64(nil, seq))
	require.NoError(t, err)
	waitFor(t, "datagram in flight", eventually, func() bool { return r.fwd.len() == 1 })
	l.SetPartition(true)
	require.True(t, l.Partitioned())
	for range 5 {
		seq++
		require.False(t, ping(seq, 100*time.Millisecond), "echo during the partition")
	}
	waitFor(t, "5 pings and the one in flight dropped", eventually, func() bool {
		return r.Stats().AtoB.DropPartition == 6
	})
	s := r.Stats()
	require.EqualValues(t, 1, s.AtoB.Packets, "only the ping from before the partition")
	require.EqualValues(t, 1, s.BtoA.Packets, "only the echo from before the partition")

	l.SetPartition(false)
	seq++
	require.True(t, ping(seq, 10*time.Second), "echo after healing")
	// Late echoes of pings sent during the partition must not exist.
	require.EqualValues(t, 6, r.Stats().AtoB.DropPartition)
}

func TestTCPPartition(t *testing.T) {
	echo := tcpEcho(t)
	p := Profile{Delay: 10 * time.Millisecond}
	l := newLink(t, p, p)
	r := tcpRelay(t, echo, l)
	c, err := net.Dial("tcp4", r.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	buf := make([]byte, 5)
	roundTrip := func(c net.Conn, msg string, wait time.Duration) error {
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		require.Equal(t, msg, string(buf))
		return nil
	}
	require.NoError(t, roundTrip(c, "hello", 10*time.Second))

	l.SetPartition(true)
	// An existing connection stalls: no reset, no data.
	err = roundTrip(c, "stall", 300*time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	// A new connection is accepted but hangs.
	c2, err := net.Dial("tcp4", r.Addr().String())
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.Write([]byte("fresh"))
	require.NoError(t, err)
	require.NoError(t, c2.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err = io.ReadFull(c2, buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	before := r.Stats()

	l.SetPartition(false)
	// The held bytes arrive, nothing was lost or duplicated.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "stall", string(buf))
	require.NoError(t, c2.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadFull(c2, buf)
	require.NoError(t, err)
	require.Equal(t, "fresh", string(buf))
	require.NoError(t, roundTrip(c, "again", 10*time.Second))
	require.Equal(t, uint64(5), before.BtoA.Bytes, "nothing came back during the partition")
}

// TestSharedBandwidth: two relays on one Link share its bandwidth, like the
// QUIC and HTTP traffic of a site pair.
func TestSharedBandwidth(t *testing.T) {
	const bw, size = 20e6 / 8, 2 << 20 // each of two transfers
	requireWithin(t, "aggregate rate", bw, bw*rateTolerance, func() (float64, string) {
		l := newLink(t, Profile{Bandwidth: bw}, Profile{})
		done := make(chan time.Time, 2)
		var addrs []string
		for range 2 {
			sink := tcpServer(t, func(c net.Conn) {
				n, _ := io.Copy(io.Discard, c)
				if n == size {
					done <- time.Now()
				}
			})
			addrs = append(addrs, tcpRelay(t, sink, l).Addr().String())
		}
		start := time.Now()
		for _, a := range addrs {
			c, err := net.Dial("tcp4", a)
			require.NoError(t, err)
			defer c.Close()
			go func() {
				_, _ = c.Write(make([]byte, size))
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
		var end time.Time
		for range 2 {
			select {
			case end = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("transfers did not finish in 30s")
			}
		}
		el := end.Sub(start)
		rate := float64(2*size) / el.Seconds()
		return rate, fmt.Sprintf("2 × %d bytes in %v: %.3f Mbit/s together (cap %.3f Mbit/s)", size, el, rate*8/1e6, bw*8/1e6)
	})
}
