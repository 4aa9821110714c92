package notedbfast

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrClosed is the outcome of Submit on a closed Batcher, and of a write
// still queued when it closed.
var ErrClosed = errors.New("batcher closed")

// Result is one write's outcome from a flush.
type Result[R any] struct {
	Value R
	Err   error
}

// FlushFunc does one batch of writes and returns one result per write, in
// order. A failing write must not fail the others: it gets its own Err.
//
// A flush holds one of the batcher's MaxInFlight slots until it returns or
// calls release, whichever comes first: a flush whose remaining work need
// not hold back the next batch (say, a local commit after the decision)
// calls release so the next batch starts meanwhile. release may be called
// more than once, from any goroutine.
type FlushFunc[W, R any] func(ctx context.Context, batch []W, release func()) []Result[R]

// BatcherConfig bounds a Batcher.
type BatcherConfig[W any] struct {
	MaxItems    int                          // writes per batch; 0 means 256
	MaxBytes    int64                        // Size of a batch; 0 means 16 MiB (mesh.max_frame)
	MaxInFlight int                          // flushes at once; 0 means 1
	Size        func(W) int64                // a write's size; nil counts 1 per write
	Observe     func(items int, bytes int64) // called per flushed batch (Metrics.ObserveBatch); may be nil
}

// Batcher is group commit: writes submitted while MaxInFlight flushes are
// running queue up and go together in the next flush, so a batch grows
// with load and the number of round trips does not. There is no timer: an
// idle batcher flushes a lone write at once.
//
// Flushes run on goroutines the batcher starts when work arrives and that
// end when the queue is empty; Close waits for them. Safe for concurrent
// use.
type Batcher[W, R any] struct {
	cfg   BatcherConfig[W]
	flush FlushFunc[W, R]

	ctx    context.Context // flushes run under it; Close cancels it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	queue    []*pending[W, R]
	inFlight int
	closed   bool
}

type pending[W, R any] struct {
	w    W
	size int64
	done chan Result[R] // buffered: a flush never blocks on a caller that left
}

// NewBatcher returns a batcher calling flush.
func NewBatcher[W, R any](cfg BatcherConfig[W], flush FlushFunc[W, R]) *Batcher[W, R] {
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = 256
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 16 << 20
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Batcher[W, R]{cfg: cfg, flush: flush, ctx: ctx, cancel: cancel}
}

// Submit queues w and waits for its result. If ctx ends while w is still
// queued, w is withdrawn and ctx's error returned; once its batch is being
// flushed, the write may still happen after Submit returned ctx's error.
func (b *Batcher[W, R]) Submit(ctx context.Context, w W) (R, error) {
	var zero R
	p := &pending[W, R]{w: w, size: 1, done: make(chan Result[R], 1)}
	if b.cfg.Size != nil {
		p.size = b.cfg.Size(w)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return zero, ErrClosed
	}
	b.queue = append(b.queue, p)
	if b.inFlight < b.cfg.MaxInFlight {
		b.inFlight++
		b.wg.Add(1)
		go b.run()
	}
	b.mu.Unlock()
	select {
	case r := <-p.done:
		return r.Value, r.Err
	case <-ctx.Done():
		b.mu.Lock()
		for i, q := range b.queue {
			if q == p {
				b.queue = append(b.queue[:i], b.queue[i+1:]...)
				break
			}
		}
		b.mu.Unlock()
		return zero, ctx.Err()
	}
}

// run flushes batches until the queue is empty or a flush released its
// slot (a new run then took it over if there was work).
func (b *Batcher[W, R]) run() {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		batch := b.take()
		if len(batch) == 0 {
			b.inFlight--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		// Guarded by mu: whether this flush still holds its slot. A
		// release after the flush returned is a no-op.
		const (
			holding = iota
			released
			finished
		)
		state := holding
		release := func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if state != holding {
				return
			}
			state = released
			b.inFlight--
			if len(b.queue) > 0 && !b.closed && b.inFlight < b.cfg.MaxInFlight {
				b.inFlight++
				b.wg.Add(1)
				go b.run()
			}
		}
		b.do(batch, release)
		b.mu.Lock()
		gone := state == released
		state = finished
		b.mu.Unlock()
		if gone {
			return
		}
	}
}

// take removes the next batch from the queue: at least one write, then as
// many as fit the bounds. The caller holds mu.
func (b *Batcher[W, R]) take() []*pending[W, R] {
	n := 0
	var size int64
	for n < len(b.queue) && n < b.cfg.MaxItems {
		if n > 0 && size+b.queue[n].size > b.cfg.MaxBytes {
			break
		}
		size += b.queue[n].size
		n++
	}
	batch := append([]*pending[W, R](nil), b.queue[:n]...)
	b.queue = append(b.queue[:0], b.queue[n:]...)
	return batch
}

func (b *Batcher[W, R]) do(batch []*pending[W, R], release func()) {
	ws := make([]W, len(batch))
	var size int64
	for i, p := range batch {
		ws[i] = p.w
		size += p.size
	}
	if b.cfg.Observe != nil {
		b.cfg.Observe(len(ws), size)
	}
	rs := b.flush(b.ctx, ws, release)
	for i, p := range batch {
		if len(rs) != len(batch) {
			p.done <- Result[R]{Err: fmt.Errorf("flush returned %d results for %d writes", len(rs), len(batch))}
			continue
		}
		p.done <- rs[i]
	}
}

// Close refuses new writes, fails the queued ones with ErrClosed, cancels
// the context of running flushes and waits for them to return.
// Idempotent.
func (b *Batcher[W, R]) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		for _, p := range b.queue {
			p.done <- Result[R]{Err: ErrClosed}
		}
		b.queue = nil
	}
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
}
