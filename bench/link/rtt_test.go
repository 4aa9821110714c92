package link

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rttTolerance is the accuracy the emulator promises for a measured RTT.
const rttTolerance = 2 * time.Millisecond

// rttSamples is how many round trips a measurement takes; the median of them
// is robust against a few slow ones on a shared, busy machine.
const rttSamples = 21

// udpRTT measures round trips of small datagrams to an echo behind addr.
func udpRTT(t *testing.T, addr string) []time.Duration {
	t.Helper()
	c, err := net.Dial("udp4", addr)
	require.NoError(t, err)
	defer c.Close()
	var out []time.Duration
	buf := make([]byte, 64)
	for seq := uint64(0); len(out) < rttSamples; seq++ {
		require.Less(t, seq, uint64(3*rttSamples), "too many lost round trips")
		msg := binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
		start := time.Now()
		_, err := c.Write(msg)
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(start.Add(2*time.Second)))
		for {
			n, err := c.Read(buf)
			if err != nil {
				break // lost: next sequence number
			}
			if n == 8 && binary.BigEndian.Uint64(buf) == seq {
				out = append(out, time.Since(start))
				break
			}
		}
	}
	return out
}

// tcpRTT measures round trips of small messages on one connection to an echo
// behind addr.
func tcpRTT(t *testing.T, addr string) []time.Duration {
	t.Helper()
	c, err := net.Dial("tcp4", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.(*net.TCPConn).SetNoDelay(true))
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	var out []time.Duration
	buf := make([]byte, 8)
	for seq := uint64(0); seq < rttSamples; seq++ {
		start := time.Now()
		_, err := c.Write(binary.BigEndian.AppendUint64(nil, seq))
		require.NoError(t, err)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, seq, binary.BigEndian.Uint64(buf))
		out = append(out, time.Since(start))
	}
	return out
}

func TestRTT(t *testing.T) {
	tests := []struct {
		name   string
		proto  string
		ab, ba Profile
		chain  bool // two relays in a row, each with the profiles
		want   time.Duration
	}{
		{name: "udp/50ms each way", proto: "udp", ab: Profile{Delay: 50 * time.Millisecond}, ba: Profile{Delay: 50 * time.Millisecond}, want: 100 * time.Millisecond},
		{name: "tcp/50ms each way", proto: "tcp", ab: Profile{Delay: 50 * time.Millisecond}, ba: Profile{Delay: 50 * time.Millisecond}, want: 100 * time.Millisecond},
		{name: "udp/asymmetric 20ms+60ms", proto: "udp", ab: Profile{Delay: 20 * time.Millisecond}, ba: Profile{Delay: 60 * time.Millisecond}, want: 80 * time.Millisecond},
		{name: "tcp/asymmetric 20ms+60ms", proto: "tcp", ab: Profile{Delay: 20 * time.Millisecond}, ba: Profile{Delay: 60 * time.Millisecond}, want: 80 * time.Millisecond},
		{name: "udp/two relays of 25ms", proto: "udp", ab: Profile{Delay: 25 * time.Millisecond}, ba: Profile{Delay: 25 * time.Millisecond}, chain: true, want: 100 * time.Millisecond},
		{name: "tcp/two relays of 25ms", proto: "tcp", ab: Profile{Delay: 25 * time.Millisecond}, ba: Profile{Delay: 25 * time.Millisecond}, chain: true, want: 100 * time.Millisecond},
		// Jitter is symmetric, so the median stays at the delay (with 2 ms
		// jitter per way the median of 21 has a standard deviation ~0.4 ms).
		{name: "udp/50ms jitter 2ms", proto: "udp", ab: Profile{Delay: 50 * time.Millisecond, Jitter: 2 * time.Millisecond}, ba: Profile{Delay: 50 * time.Millisecond, Jitter: 2 * time.Millisecond}, want: 100 * time.Millisecond},
		// A bandwidth limit adds only the serialization of a tiny message.
		{name: "tcp/50ms at 100Mbit", proto: "tcp", ab: Profile{Delay: 50 * time.Millisecond, Bandwidth: 100e6 / 8}, ba: Profile{Delay: 50 * time.Millisecond, Bandwidth: 100e6 / 8}, want: 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var addr string
			if tt.proto == "udp" {
				addr = udpEcho(t)
			} else {
				addr = tcpEcho(t)
			}
			hops := 1
			if tt.chain {
				hops = 2
			}
			for range hops {
				l := newLink(t, tt.ab, tt.ba)
				if tt.proto == "udp" {
					addr = udpRelay(t, addr, l).Addr().String()
				} else {
					addr = tcpRelay(t, addr, l).Addr().String()
				}
			}
			requireRTT(t, tt.want, func() []time.Duration {
				if tt.proto == "udp" {
					return udpRTT(t, addr)
				}
				return tcpRTT(t, addr)
			})
		})
	}
}
