package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// maxTCPInFlight bounds the bytes one direction of one relayed TCP connection
// holds in its delay line. 32 MiB covers 1 Gbit/s × 250 ms (delay plus
// QueueTime), so the bound does not limit the emulated links we run, while a
// connection at loopback speed with no bandwidth limit cannot eat memory.
const maxTCPInFlight = 32 << 20

// chunkSize is the largest read from a TCP source.
const chunkSize = 32 << 10

// chunkTime is the serialization time a read chunk aims at: small enough that
// a rate-limited stream is released smoothly (a 20 Mbit/s link gets 5 KB
// chunks), large enough that fast links are read in big chunks.
const chunkTime = 2 * time.Millisecond

// acceptRetry is the pause after a failed Accept (for example EMFILE), so a
// persistent error does not spin.
const acceptRetry = 10 * time.Millisecond

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// readLimit is how many bytes to read at a time from a source on a direction
// of bandwidth bw.
func readLimit(bw int64) int {
	if bw <= 0 {
		return chunkSize
	}
	n := int64(txBytes(chunkTime, bw))
	return int(min(max(n, 1024), chunkSize))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func txBytes(d time.Duration, bw int64) int64 { return bw * int64(d) / int64(time.Second) }

// TCPRelay forwards TCP connections to a target through a Link.
type TCPRelay struct {
	relayBase
	ln *net.TCPListener
	wg sync.WaitGroup
}

// ListenTCP creates a TCP relay listening on cfg.Listen. Serve it with Run.
func ListenTCP(cfg Config) (*TCPRelay, error) {
	r := &TCPRelay{}
	listen, err := r.init(cfg, "tcp")
	if err != nil {
		return nil, err
	}
	if r.ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(listen)); err != nil {
		return nil, fmt.Errorf("tcp relay: %w", err)
	}
	return r, nil
}

// Addr is the address clients connect to.
func (r *TCPRelay) Addr() net.Addr { return r.ln.Addr() }

// Run relays connections until ctx ends or Close is called; it then closes
// every relayed connection and returns after every goroutine of the relay has
// exited. It returns net.ErrClosed if the relay was closed or already run.
func (r *TCPRelay) Run(ctx context.Context) error {
	if !r.life.begin() {
		return fmt.Errorf("tcp relay %v: %w", r.Addr(), net.ErrClosed)
	}
	defer close(r.life.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.accept(ctx) }()
	select {
	case <-ctx.Done():
	case <-r.life.closing:
	}
	cancel()
	_ = r.ln.Close()
	r.wg.Wait()
	return nil
}

// Close stops the relay; it is idempotent and returns after Run has returned.
func (r *TCPRelay) Close() error {
	wait := r.life.close()
	if !wait {
		_ = r.ln.Close()
		return nil
	}
	<-r.life.done
	return nil
}

func (r *TCPRelay) accept(ctx context.Context) {
	for {
		c, err := r.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.log.Warn("accept", "error", err)
			t := time.NewTimer(acceptRetry)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		r.st.accepted.Add(1)
		r.st.flows.Add(1)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.st.flows.Add(-1)
			r.handle(ctx, c)
		}()
	}
}

// handle relays one connection until both directions have ended, one fails,
// or ctx ends.
func (r *TCPRelay) handle(ctx context.Context, c *net.TCPConn) {
	defer c.Close()
	// The handshake: the client's connect completed at the relay's kernel at
	// once, but on a WAN its first bytes could leave only after the SYN and
	// SYN-ACK had travelled. So nothing on this connection is taken as sent
	// before one RTT after the accept.
	open := time.Now().Add(r.out.profile().Delay + r.in.profile().Delay)
	// During a partition a new connection hangs here, before the target
	// is dialled: the client sees a stall, not a refusal.
	if !r.link.waitHealed(ctx.Done()) {
		return
	}
	var d net.Dialer
	upc, err := d.DialContext(ctx, "tcp4", r.target.String())
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("dial target", "error", err)
		}
		return
	}
	up := upc.(*net.TCPConn)
	defer up.Close()

	abort := make(chan struct{})
	var once sync.Once
	kill := func() {
		once.Do(func() {
			close(abort)
			_ = c.Close()
			_ = up.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.stream(c, up, r.out, &r.st.dir[AtoB], open, abort, kill) }()
	go func() { defer wg.Done(); r.stream(up, c, r.in, &r.st.dir[BtoA], open, abort, kill) }()
	streams := make(chan struct{})
	go func() { wg.Wait(); close(streams) }()
	select {
	case <-streams:
		kill()
	case <-ctx.Done():
		kill()
		<-streams
	}
}

// chunk is bytes read from a source, or its end (b nil, err io.EOF for a
// clean end).
type chunk struct {
	b   *[]byte
	n   int
	err error
}

// stream copies src to dst through a direction p: a reader that stops reading
// while the serializer queue is full, the link is cut or too much is in
// flight, and a writer that releases each chunk at its time. A clean end of
// src half-closes dst (after the delay); an error kills the connection.
// Nothing is taken as sent before open.
func (r *TCPRelay) stream(src, dst *net.TCPConn, p *pipe, c *dirCounters, open time.Time, abort <-chan struct{}, kill func()) {
	q := newReleaseQueue[chunk]()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		q.run(abort, func(ch chunk) bool {
			// Held, not dropped, while the link is cut.
			if !r.link.waitHealed(abort) {
				return false
			}
			if ch.b == nil {
				if errors.Is(ch.err, io.EOF) {
					_ = dst.CloseWrite()
				} else {
					kill()
				}
				return false
			}
			_, err := dst.Write((*ch.b)[:ch.n])
			chunkPool.Put(ch.b)
			if err != nil {
				kill()
				return false
			}
			c.delivered(ch.n)
			return true
		})
	}()
	defer func() { <-writerDone }()

	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	busy := false // the last read filled its buffer: the source has more
	for {
		// Waiting for a partition to heal or for the far side to take
		// data is real idle time of the link.
		if r.link.Partitioned() || q.bytesQueued() >= maxTCPInFlight {
			busy = false
		}
		if !r.link.waitHealed(abort) || !q.waitRoom(maxTCPInFlight, abort) {
			return
		}
		b := chunkPool.Get().(*[]byte)
		limit := readLimit(p.profile().Bandwidth)
		n, err := src.Read((*b)[:limit])
		now := time.Now()
		if n > 0 {
			var at time.Time
			var backlog time.Duration
			if busy {
				at, backlog = p.admitBusy(now, n)
			} else {
				at, backlog = p.admitStream(later(now, open), now, n)
			}
			busy = n == limit
			q.push(at, n, chunk{b: b, n: n})
			// Keep at most QueueTime of data waiting for the serializer;
			// the rest waits in the kernel's socket buffers, pushing back
			// on the sender as a slow path does.
			if wait := backlog - QueueTime; wait > 0 {
				t.Reset(wait)
				select {
				case <-t.C:
				case <-abort:
					return
				}
			}
		} else {
			chunkPool.Put(b)
		}
		if err != nil {
			at, _ := p.admitStream(later(now, open), now, 0) // the FIN travels too
			q.push(at, 0, chunk{err: err})
			return
		}
	}
}
