package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// patternReader yields n deterministic pseudo-random bytes without holding
// them: the bulk payload is generated on the fly on both sides of a test.
type patternReader struct {
	rng *rand.ChaCha8
	n   int64
}

func newPattern(seed byte, n int64) *patternReader {
	return &patternReader{rng: rand.NewChaCha8([32]byte{seed}), n: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	n, _ := p.rng.Read(b)
	p.n -= int64(n)
	return n, nil
}

// TestThreeSiteMesh: three sites on loopback all connect pairwise; a bulk
// stream of bulkSize (1 GiB, 64 MiB under -race) arrives intact (SHA-256
// compared, never held in memory) while 1,000 concurrent small requests on
// the same connection all complete.
func TestThreeSiteMesh(t *testing.T) {
	names := []string{"a", "b", "c"}
	sites := newCluster(t, names, nil)
	for _, n := range names {
		m := sites[n].m
		m.Handle(kindEcho, func(ctx context.Context, from string, p []byte) ([]byte, error) {
			return append([]byte(n+"<-"+from+":"), p...), nil
		})
		m.HandleStream(kindBulk, func(ctx context.Context, from string, hdr []byte, body io.Reader) ([]byte, error) {
			h := sha256.New()
			buf := make([]byte, 1<<20)
			nb, err := io.CopyBuffer(h, body, buf)
			if err != nil {
				return nil, err
			}
			return fmt.Appendf(h.Sum(nil), " %d", nb), nil
		})
	}
	waitMesh(t, sites, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Every pair talks, both ways.
	for _, x := range names {
		for _, y := range names {
			if x == y {
				continue
			}
			got, err := sites[x].m.Request(ctx, y, kindEcho, []byte("hello"))
			require.NoError(t, err)
			assert.Equal(t, y+"<-"+x+":hello", string(got))
		}
	}

	a := sites["a"].m
	s, err := a.OpenStream(ctx, "b", kindBulk, []byte("pack"))
	require.NoError(t, err)
	var sent atomic.Int64
	streamDone := make(chan struct{})
	var reply []byte
	var streamErr error
	want := sha256.New()
	start := time.Now()
	go func() {
		defer close(streamDone)
		buf := make([]byte, 1<<20)
		src := io.TeeReader(newPattern(1, bulkSize), want)
		for {
			n, rerr := io.ReadFull(src, buf)
			if n > 0 {
				if _, err := s.Write(buf[:n]); err != nil {
					streamErr = err
					return
				}
				sent.Add(int64(n))
			}
			if rerr != nil {
				break
			}
		}
		reply, streamErr = s.CloseAndWait(ctx)
	}()

	// Start the requests once the stream is well under way.
	require.Eventually(t, func() bool { return sent.Load() >= 8<<20 }, time.Minute, time.Millisecond)
	reqStart := time.Now()
	var g errgroup.Group
	for i := range 1000 {
		g.Go(func() error {
			p := fmt.Appendf(nil, "req-%d", i)
			got, err := a.Request(ctx, "b", kindEcho, p)
			if err != nil {
				return fmt.Errorf("request %d: %w", i, err)
			}
			if !bytes.Equal(got, append([]byte("b<-a:"), p...)) {
				return fmt.Errorf("request %d: reply %q", i, got)
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	reqTime := time.Since(reqStart)
	pb := a.peers["b"]
	pb.mu.Lock()
	require.Len(t, pb.conns, 1, "stream and requests must share the one a-b connection")
	pb.mu.Unlock()
	sentAtReqEnd := sent.Load()
	<-streamDone
	elapsed := time.Since(start)
	require.NoError(t, streamErr)
	assert.Equal(t, fmt.Sprintf("%s %d", want.Sum(nil), bulkSize), string(reply), "bulk stream corrupted")
	t.Logf("bulk %d MiB a→b in %v (%.0f MiB/s); 1000 requests a→b in %v, done with %d MiB of the stream sent",
		bulkSize>>20, elapsed.Round(time.Millisecond), float64(bulkSize>>20)/elapsed.Seconds(), reqTime.Round(time.Millisecond), sentAtReqEnd>>20)
	if !raceEnabled {
		assert.Less(t, sentAtReqEnd, int64(bulkSize), "requests should complete while the stream is in flight")
	}
	// One connection per pair, the same at both ends.
	for _, st := range sites {
		require.Eventually(t, func() bool { return st.m.live.Load() == 2 }, 5*time.Second, 10*time.Millisecond,
			"site %s: not one connection per pair", st.cfg.Site)
	}
	pa := a.Peers()[0]
	assert.GreaterOrEqual(t, pa.BytesOut, uint64(bulkSize))
}
