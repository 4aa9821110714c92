package notedbfast

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBatcherGroupsWhileInFlight(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	flush := func(ctx context.Context, batch []int, _ func()) []Result[int] {
		mu.Lock()
		sizes = append(sizes, len(batch))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			<-release // hold the first flush so the others queue up
		}
		rs := make([]Result[int], len(batch))
		for i, w := range batch {
			if w%10 == 3 {
				rs[i].Err = fmt.Errorf("write %d refused", w)
				continue
			}
			rs[i].Value = w * 2
		}
		return rs
	}
	var observed atomic.Int64
	b := NewBatcher(BatcherConfig[int]{MaxItems: 8, Observe: func(n int, _ int64) { observed.Add(int64(n)) }}, flush)
	defer b.Close()

	const n = 21
	var wg sync.WaitGroup
	errs := make([]error, n)
	vals := make([]int, n)
	wg.Add(1)
	go func() { defer wg.Done(); vals[0], errs[0] = b.Submit(t.Context(), 0) }()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == 1 }, 5*time.Second, time.Millisecond)
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); vals[i], errs[i] = b.Submit(t.Context(), i) }()
	}
	require.Eventually(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.queue) == n-1 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	for i := range n {
		if i%10 == 3 {
			require.ErrorContains(t, errs[i], fmt.Sprintf("write %d refused", i))
			continue
		}
		require.NoError(t, errs[i])
		require.Equal(t, 2*i, vals[i])
	}
	require.Equal(t, []int{1, 8, 8, 4}, sizes, "one flush in flight; the queue drains in batches of at most 8")
	require.EqualValues(t, n, observed.Load())
}

func TestBatcherBytesAndInFlight(t *testing.T) {
	var inFlight, peak atomic.Int32
	gate := make(chan struct{})
	var batches sync.Map
	flush := func(ctx context.Context, batch []string, _ func()) []Result[string] {
		cur := inFlight.Add(1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		<-gate
		inFlight.Add(-1)
		batches.Store(fmt.Sprint(batch), true)
		rs := make([]Result[string], len(batch))
		for i, w := range batch {
			rs[i].Value = w
		}
		return rs
	}
	b := NewBatcher(BatcherConfig[string]{MaxInFlight: 2, MaxBytes: 10, Size: func(s string) int64 { return int64(len(s)) }}, flush)
	defer b.Close()
	var wg sync.WaitGroup
	for _, w := range []string{"aaaaaa", "bbbbbb", "cccc", "dddddd", "ee"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := b.Submit(t.Context(), w)
			require.NoError(t, err)
			require.Equal(t, w, v)
		}()
		time.Sleep(5 * time.Millisecond) // order the submissions; not an assertion
	}
	require.Eventually(t, func() bool { return inFlight.Load() == 2 }, 5*time.Second, time.Millisecond)
	close(gate)
	wg.Wait()
	require.EqualValues(t, 2, peak.Load())
	batches.Range(func(k, _ any) bool {
		total := 0
		for _, c := range k.(string) {
			if c >= 'a' && c <= 'e' {
				total++
			}
		}
		require.LessOrEqual(t, total, 10, "batch %s over MaxBytes", k)
		return true
	})
}

func TestBatcherCancelAndClose(t *testing.T) {
	gate := make(chan struct{})
	flush := func(ctx context.Context, batch []int, _ func()) []Result[int] {
		select {
		case <-gate:
		case <-ctx.Done():
			rs := make([]Result[int], len(batch))
			for i := range rs {
				rs[i].Err = ctx.Err()
			}
			return rs
		}
		return make([]Result[int], len(batch))
	}
	b := NewBatcher(BatcherConfig[int]{}, flush)
	first := make(chan error, 1)
	go func() { _, err := b.Submit(context.Background(), 1); first <- err }()
	require.Eventually(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.inFlight == 1 && len(b.queue) == 0 }, 5*time.Second, time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() { _, err := b.Submit(ctx, 2); queued <- err }()
	require.Eventually(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.queue) == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-queued, context.Canceled)
	b.mu.Lock()
	require.Empty(t, b.queue, "a cancelled write leaves the queue")
	b.mu.Unlock()

	left := make(chan error, 1)
	go func() { _, err := b.Submit(context.Background(), 3); left <- err }()
	require.Eventually(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.queue) == 1 }, 5*time.Second, time.Millisecond)
	b.Close()
	require.ErrorIs(t, <-left, ErrClosed)
	require.ErrorIs(t, <-first, context.Canceled, "Close cancels the running flush and waits for it")
	_, err := b.Submit(context.Background(), 4)
	require.True(t, errors.Is(err, ErrClosed))
	b.Close() // idempotent
}

// A flush that releases its slot lets the next batch start while it is
// still running; one that does not keeps the batcher at MaxInFlight.
func TestBatcherRelease(t *testing.T) {
	for _, tc := range []struct {
		name     string
		release  bool
		wantPeak int64
	}{
		{name: "released", release: true, wantPeak: 2},
		{name: "held", release: false, wantPeak: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := make(chan struct{})
			var running, peak atomic.Int64
			var flushes atomic.Int64
			flush := func(ctx context.Context, batch []int, release func()) []Result[int] {
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				if tc.release {
					release()
					release() // more than once is fine
				}
				if flushes.Add(1) == 1 {
					<-gate // the first batch's tail outlasts the second
				}
				running.Add(-1)
				return make([]Result[int], len(batch))
			}
			b := NewBatcher(BatcherConfig[int]{}, flush)
			defer b.Close()
			done := make(chan error, 2)
			ended := func() error { // a Submit's end, or the test fails in time
				select {
				case err := <-done:
					return err
				case <-time.After(10 * time.Second):
					t.Fatal("a batch did not end")
					return nil
				}
			}
			go func() { _, err := b.Submit(t.Context(), 1); done <- err }()
			require.Eventually(t, func() bool { return flushes.Load() == 1 }, 5*time.Second, time.Millisecond)
			go func() { _, err := b.Submit(t.Context(), 2); done <- err }()
			if tc.release {
				require.NoError(t, ended(), "the second batch ends while the first still runs")
				close(gate)
			} else {
				require.Eventually(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.queue) == 1 }, 5*time.Second, time.Millisecond)
				close(gate)
				require.NoError(t, ended())
			}
			require.NoError(t, ended())
			require.Equal(t, tc.wantPeak, peak.Load())
			require.Eventually(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.inFlight == 0 }, 5*time.Second, time.Millisecond, "every slot is given back")
		})
	}
}
