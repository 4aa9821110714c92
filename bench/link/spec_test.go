package link

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "1Gbit", want: 125_000_000},
		{in: "1Gbit/s", want: 125_000_000},
		{in: "100Mbit", want: 12_500_000},
		{in: "20Mbps", want: 2_500_000},
		{in: "1.5Mbit", want: 187_500},
		{in: "64kbit", want: 8_000},
		{in: "10MiB/s", want: 10 << 20},
		{in: "512KiB/s", want: 512 << 10},
		{in: "1GB/s", want: 1_000_000_000},
		{in: "800B/s", want: 800},
		{in: "0", want: 0},
		{in: "unlimited", want: 0},
		{in: "", wantErr: "empty"},
		{in: "100", wantErr: "missing unit"},
		{in: "100MB", wantErr: `unknown unit "MB"`},
		{in: "10 furlongs", wantErr: `unknown unit "furlongs"`},
		{in: "Gbit", wantErr: "want a number then a unit"},
		{in: "1.2.3Mbit", wantErr: "invalid syntax"},
		{in: "1bit", wantErr: "below 1 byte/s"},
		{in: "9999999Tbit", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrBadRate)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			back, err := ParseRate(FormatRate(got))
			require.NoError(t, err)
			require.Equal(t, got, back, "round trip through %q", FormatRate(got))
		})
	}
}

func TestParseSpec(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		in      string
		want    Spec
		wantErr string
		wantIs  error // the cause, besides ErrBadSpec
	}{
		{
			name: "udp, all options",
			in:   "udp:127.0.0.1:9000->127.0.0.1:7443,delay=50ms,jitter=2ms,loss=0.01,bw=1Gbit",
			want: Spec{Proto: "udp", Listen: "127.0.0.1:9000", Target: "127.0.0.1:7443",
				AtoB: Profile{Delay: 50 * ms, Jitter: 2 * ms, Loss: 0.01, Bandwidth: 125e6},
				BtoA: Profile{Delay: 50 * ms, Jitter: 2 * ms, Loss: 0.01, Bandwidth: 125e6}},
		},
		{
			name: "tcp, no options",
			in:   "tcp:127.0.0.1:0->127.0.0.2:8080",
			want: Spec{Proto: "tcp", Listen: "127.0.0.1:0", Target: "127.0.0.2:8080"},
		},
		{
			name: "per direction overrides",
			in:   "tcp:127.0.0.1:9080->127.0.0.1:8080,delay=50ms,ba.delay=80ms,ab.bw=10MiB/s,loss=1%",
			want: Spec{Proto: "tcp", Listen: "127.0.0.1:9080", Target: "127.0.0.1:8080",
				AtoB: Profile{Delay: 50 * ms, Loss: 0.01, Bandwidth: 10 << 20},
				BtoA: Profile{Delay: 80 * ms, Loss: 0.01}},
		},
		{name: "no protocol", in: "127.0.0.1:1->127.0.0.1:2", wantErr: `protocol "127.0.0.1": want udp or tcp`},
		{name: "bad protocol", in: "sctp:127.0.0.1:1->127.0.0.1:2", wantErr: `protocol "sctp"`},
		{name: "missing arrow", in: "udp:127.0.0.1:1,delay=1ms", wantErr: `missing "->"`},
		{name: "empty", in: "", wantErr: "missing protocol"},
		{name: "not loopback", in: "udp:127.0.0.1:1->192.168.1.1:2", wantErr: "target: address \"192.168.1.1:2\": not an IPv4 loopback", wantIs: ErrNotLoopback},
		{name: "listen everywhere", in: "udp:0.0.0.0:1->127.0.0.1:2", wantErr: "not an IPv4 loopback"},
		{name: "target port 0", in: "udp:127.0.0.1:1->127.0.0.1:0", wantErr: "port 0"},
		{name: "host name", in: "tcp:localhost:1->127.0.0.1:2", wantErr: "want ip:port"},
		{name: "unknown option", in: "udp:127.0.0.1:1->127.0.0.1:2,latency=5ms", wantErr: `option "latency": unknown option`},
		{name: "option without value", in: "udp:127.0.0.1:1->127.0.0.1:2,delay", wantErr: "want name=value"},
		{name: "trailing comma", in: "udp:127.0.0.1:1->127.0.0.1:2,", wantErr: "empty option"},
		{name: "bad duration", in: "udp:127.0.0.1:1->127.0.0.1:2,delay=50", wantErr: `option "delay": time: missing unit`},
		{name: "negative delay", in: "udp:127.0.0.1:1->127.0.0.1:2,delay=-5ms", wantErr: "negative duration"},
		{name: "absurd delay", in: "udp:127.0.0.1:1->127.0.0.1:2,delay=50s", wantErr: "a->b: bad link profile: delay 50s outside", wantIs: ErrBadProfile},
		{name: "loss of one", in: "udp:127.0.0.1:1->127.0.0.1:2,loss=1", wantErr: "outside [0, 1)"},
		{name: "loss not a number", in: "udp:127.0.0.1:1->127.0.0.1:2,loss=some", wantErr: "want a probability"},
		{name: "bad rate", in: "udp:127.0.0.1:1->127.0.0.1:2,bw=fast", wantErr: `option "bw": bad rate "fast"`, wantIs: ErrBadRate},
		{name: "bad direction", in: "udp:127.0.0.1:1->127.0.0.1:2,ac.delay=5ms", wantErr: `option "ac.delay": unknown option`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSpec(tt.in)
			if tt.wantErr != "" {
				t.Log(err)
				require.ErrorIs(t, err, ErrBadSpec)
				if tt.wantIs != nil {
					require.ErrorIs(t, err, tt.wantIs)
				}
				require.ErrorContains(t, err, tt.wantErr)
				require.ErrorContains(t, err, "bad link spec "+`"`+tt.in+`"`, "the error quotes the spec")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			back, err := ParseSpec(got.String())
			require.NoError(t, err)
			require.Equal(t, got, back, "round trip through %q", got.String())
		})
	}
}

func TestParseSpecs(t *testing.T) {
	specs, err := ParseSpecs([]string{
		"udp:127.0.0.1:9000->127.0.0.1:7443,delay=50ms",
		"tcp:127.0.0.1:9080->127.0.0.1:8080,delay=50ms",
	})
	require.NoError(t, err)
	require.Len(t, specs, 2)
	_, err = ParseSpecs(nil)
	require.ErrorIs(t, err, ErrBadSpec)
	_, err = ParseSpecs([]string{"udp:127.0.0.1:9000->127.0.0.1:7443", "tcp:127.0.0.1:1->8.8.8.8:53"})
	require.ErrorIs(t, err, ErrBadSpec)
	require.ErrorContains(t, err, "8.8.8.8:53")
}

func TestServe(t *testing.T) {
	echo := tcpEcho(t)
	// Find a free port for the relay to listen on.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	listen := ln.Addr().String()
	require.NoError(t, ln.Close())
	sp, err := ParseSpec("tcp:" + listen + "->" + echo + ",delay=20ms")
	require.NoError(t, err)

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, []Spec{sp}, log) }()

	waitFor(t, "relay up", eventually, func() bool {
		c, err := net.Dial("tcp4", listen)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	requireRTT(t, 40*time.Millisecond, func() []time.Duration { return tcpRTT(t, listen) })
	cancel()
	require.NoError(t, <-done)

	// A spec that cannot listen fails the whole set, naming the address.
	bad := sp
	bad.Listen = echo // in use
	err = Serve(context.Background(), []Spec{{Proto: "udp", Listen: "127.0.0.1:0", Target: echo}, bad}, nil)
	require.ErrorContains(t, err, echo)
	require.Contains(t, logs.String(), "listen="+listen)
}
