package link

import (
	"sync"
	"sync/atomic"
	"time"
)

// timerLead is how early, in nanoseconds, release queues arm their timers: an
// estimate of how late a goroutine waiting on a timer runs after the timer's
// time (timer slack, scheduling on a busy machine, the race detector). It is a
// property of the process, so all queues share it and new queues (each TCP
// connection has two) start calibrated. Without it every hop is ~0.1–1 ms
// late and an RTT through two hops misses its ±2 ms target under load.
var timerLead atomic.Int64

// maxTimerLead bounds timerLead: lateness beyond it is the process being
// descheduled, not a bias to correct.
const maxTimerLead = 2 * time.Millisecond

// leadStep is how much one wake-up moves timerLead: small enough that the
// estimate is steady, large enough to converge within tens of wake-ups.
const leadStep = 10 * time.Microsecond

// calibrate feeds the error of one wake-up (positive: late) into timerLead.
// Stepping by the error's sign makes timerLead track the median lateness, so a
// few very late wake-ups on a loaded machine do not make all others early.
func calibrate(err time.Duration) {
	lead := time.Duration(timerLead.Load())
	switch {
	case err > 0:
		lead += leadStep
	case err < 0:
		lead -= leadStep
	}
	timerLead.Store(int64(min(max(lead, 0), maxTimerLead)))
}

// sleepUntil waits on t, a stopped timer, until at, arming it timerLead early
// and feeding the error back; false if done was closed first.
func sleepUntil(t *time.Timer, at time.Time, done <-chan struct{}) bool {
	d := time.Until(at) - time.Duration(timerLead.Load())
	if d <= 0 {
		return true
	}
	t.Reset(d)
	select {
	case <-t.C:
	case <-done:
		t.Stop()
		return false
	}
	calibrate(time.Since(at))
	return true
}

// item is data waiting in a release queue.
type item[T any] struct {
	at time.Time // release time
	n  int       // bytes, for the in-flight bound
	v  T
}

// releaseQueue is a FIFO of items whose release times never decrease (pipe
// guarantees that), drained by one goroutine that waits for the head's release
// time with a single reused timer. Each wait is towards an absolute time
// computed at arrival, so delivery latency does not accumulate.
type releaseQueue[T any] struct {
	mu    sync.Mutex
	items []item[T]
	head  int
	bytes int
	// pushed and popped hold a token when an item was pushed or popped since
	// the last time the consumer or a waiting producer looked.
	pushed, popped chan struct{}
	pending        atomic.Int64 // pushed, not yet delivered
}

func newReleaseQueue[T any]() *releaseQueue[T] {
	return &releaseQueue[T]{pushed: make(chan struct{}, 1), popped: make(chan struct{}, 1)}
}

func (q *releaseQueue[T]) push(at time.Time, n int, v T) {
	q.mu.Lock()
	q.items = append(q.items, item[T]{at: at, n: n, v: v})
	q.bytes += n
	q.pending.Add(1)
	q.mu.Unlock()
	select {
	case q.pushed <- struct{}{}:
	default:
	}
}

func (q *releaseQueue[T]) pop() (item[T], bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
		return item[T]{}, false
	}
	it := q.items[q.head]
	q.items[q.head] = item[T]{}
	q.head++
	if q.head >= 1024 && q.head*2 >= len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.bytes -= it.n
	select {
	case q.popped <- struct{}{}:
	default:
	}
	return it, true
}

// len is the number of items pushed and not yet delivered.
func (q *releaseQueue[T]) len() int { return int(q.pending.Load()) }

// bytesQueued is the number of bytes pushed and not yet popped.
func (q *releaseQueue[T]) bytesQueued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// waitRoom blocks until fewer than limit bytes are queued; false if done.
func (q *releaseQueue[T]) waitRoom(limit int, done <-chan struct{}) bool {
	for {
		q.mu.Lock()
		b := q.bytes
		q.mu.Unlock()
		if b < limit {
			return true
		}
		select {
		case <-q.popped:
		case <-done:
			return false
		}
	}
}

// run delivers every item at its release time until done is closed or deliver
// returns false.
func (q *releaseQueue[T]) run(done <-chan struct{}, deliver func(T) bool) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		it, ok := q.pop()
		if !ok {
			select {
			case <-q.pushed:
				continue
			case <-done:
				return
			}
		}
		if !sleepUntil(t, it.at, done) {
			return
		}
		ok = deliver(it.v)
		q.pending.Add(-1)
		if !ok {
			return
		}
	}
}

// lifecycle implements Run/Close for a relay: Close is idempotent and, if Run
// was started, returns only after Run has returned.
type lifecycle struct {
	mu      sync.Mutex
	started bool
	closed  bool
	closing chan struct{} // closed by Close
	done    chan struct{} // closed when Run returns
}

func (l *lifecycle) init() {
	l.closing = make(chan struct{})
	l.done = make(chan struct{})
}

// begin marks Run as started; false if it already ran or Close came first.
func (l *lifecycle) begin() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.closed {
		return false
	}
	l.started = true
	return true
}

// close signals closing and reports whether Run must be waited for.
func (l *lifecycle) close() (wait bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.closing)
	}
	return l.started
}
