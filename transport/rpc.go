package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/quic-go/quic-go"
)

// eofGrace bounds the wait for a stream's FIN after its last frame: it is
// sent with that frame, so one 200 ms round trip plus loss is plenty.
const eofGrace = 2 * time.Second

// current returns the connection in use to peer.
func (m *Mesh) current(peer string) (*conn, error) {
	p := m.peers[peer]
	if p == nil {
		return nil, fmt.Errorf("site %q: %w", peer, ErrUnknownPeer)
	}
	p.mu.Lock()
	c := p.cur
	p.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("site %q: %w", peer, ErrPeerUnavailable)
	}
	return c, nil
}

// netErr turns an error of a stream operation into the caller's error: the
// context's error if it ended, else ErrPeerUnavailable with the cause.
func netErr(ctx context.Context, op string, c *conn, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s to site %q: %w", op, c.p.name, context.Cause(ctx))
	}
	var fe *FrameError
	if errors.As(err, &fe) {
		return fmt.Errorf("%s to site %q: %w", op, c.p.name, err)
	}
	return fmt.Errorf("%s to site %q: %w: %w", op, c.p.name, ErrPeerUnavailable, err)
}

func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Nanosecond)
	}
	return 0
}

// Request sends payload to the handler of kind at peer and returns its
// reply. ctx bounds the whole exchange; its deadline travels with the
// request and bounds the handler's ctx, and canceling ctx cancels the
// handler's ctx. Errors: ErrUnknownPeer, ErrPeerUnavailable (then the handler
// may or may not have run), ErrFrameTooLarge, ctx's error, or a *RemoteError
// carrying the handler's error text.
func (m *Mesh) Request(ctx context.Context, peer string, kind Kind, payload []byte) ([]byte, error) {
	c, err := m.current(peer)
	if err != nil {
		return nil, err
	}
	frame, err := m.codec.appendFrame(nil, frameRequest, request{Kind: kind, Timeout: timeoutOf(ctx), Payload: payload}.append(nil), c.zstd)
	if err != nil {
		return nil, fmt.Errorf("request to site %q: %w", peer, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("request to site %q: %w", peer, err)
	}
	c.active.Add(1)
	defer c.active.Add(-1)
	str, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, netErr(ctx, "request", c, err)
	}
	str.SetPriority(urgencyControl, true)
	stop := context.AfterFunc(ctx, func() { str.CancelWrite(streamCanceled); str.CancelRead(streamCanceled) })
	defer stop()
	if _, err := str.Write(frame); err != nil {
		return nil, netErr(ctx, "request", c, err)
	}
	c.p.bytesOut.Add(uint64(len(frame)))
	_ = str.Close()
	return m.readResponse(ctx, c, str, kind, "request")
}

func (m *Mesh) readResponse(ctx context.Context, c *conn, str *quic.Stream, kind Kind, op string) ([]byte, error) {
	t, body, err := m.codec.readFrame(str)
	if err != nil {
		str.CancelRead(streamRejected)
		return nil, netErr(ctx, op, c, m.frameRejected(err))
	}
	c.p.bytesIn.Add(uint64(frameHeaderLen + len(body)))
	if t != frameResponse {
		m.metrics.rejected("unexpected")
		str.CancelRead(streamRejected)
		return nil, netErr(ctx, op, c, frameErr("unexpected", "%s in reply to %s", t, op))
	}
	r, err := decodeResponse(body)
	if err != nil {
		str.CancelRead(streamRejected)
		return nil, netErr(ctx, op, c, m.frameRejected(err))
	}
	// The FIN normally comes with the reply; do not let a peer that never
	// sends it hold the stream open.
	_ = str.SetReadDeadline(time.Now().Add(eofGrace))
	if err := expectEOF(str); err != nil {
		str.CancelRead(streamRejected)
	}
	if r.Status != StatusOK {
		re := &RemoteError{Peer: c.p.name, Kind: kind, Code: r.Status, Msg: string(r.Payload)}
		if err := ctxDone(ctx); err != nil {
			// The handler most likely failed because our deadline, which
			// it shares, passed: report the deadline, keep the remote text.
			return nil, fmt.Errorf("%s to site %q: %w (remote: %w)", op, c.p.name, err, re)
		}
		return nil, re
	}
	return r.Payload, nil
}

// ctxDone is ctx's error, or DeadlineExceeded once its deadline passed even
// if its timer has not fired yet.
func ctxDone(ctx context.Context) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// Notify sends payload to the handler of kind at peer without waiting for
// it to run; the handler's reply is dropped and its error only logged there.
// It returns once the frame is handed to QUIC, which delivers it unless the
// connection is lost.
func (m *Mesh) Notify(ctx context.Context, peer string, kind Kind, payload []byte) error {
	c, err := m.current(peer)
	if err != nil {
		return err
	}
	frame, err := m.codec.appendFrame(nil, frameNotify, request{Kind: kind, Payload: payload}.append(nil), c.zstd)
	if err != nil {
		return fmt.Errorf("notify site %q: %w", peer, err)
	}
	c.active.Add(1)
	defer c.active.Add(-1)
	str, err := c.qc.OpenUniStreamSync(ctx)
	if err != nil {
		return netErr(ctx, "notify", c, err)
	}
	str.SetPriority(urgencyControl, true)
	stop := context.AfterFunc(ctx, func() { str.CancelWrite(streamCanceled) })
	defer stop()
	if _, err := str.Write(frame); err != nil {
		return netErr(ctx, "notify", c, err)
	}
	c.p.bytesOut.Add(uint64(len(frame)))
	return str.Close()
}

// Stream is the sending end of a bulk byte stream opened by OpenStream.
// Write it (it is never buffered whole nor compressed), then CloseAndWait or
// Abort. Not safe for concurrent Writes.
type Stream struct {
	m       *Mesh
	c       *conn
	ctx     context.Context
	str     *quic.Stream
	kind    Kind
	stop    func() bool
	once    sync.Once // Abort
	aborted atomic.Bool
	done    sync.Once // releases c.active
}

func (s *Stream) release() { s.done.Do(func() { s.c.active.Add(-1) }) }

// OpenStream opens a bulk stream to the handler of kind at peer, sending
// header (≤ MaxFrame) first. ctx bounds the whole stream: when it ends the
// stream is aborted; its deadline bounds the receiving handler's ctx.
func (m *Mesh) OpenStream(ctx context.Context, peer string, kind Kind, header []byte) (*Stream, error) {
	c, err := m.current(peer)
	if err != nil {
		return nil, err
	}
	frame, err := m.codec.appendFrame(nil, frameStreamOpen, request{Kind: kind, Timeout: timeoutOf(ctx), Payload: header}.append(nil), c.zstd)
	if err != nil {
		return nil, fmt.Errorf("open stream to site %q: %w", peer, err)
	}
	c.active.Add(1)
	str, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		c.active.Add(-1)
		return nil, netErr(ctx, "open stream", c, err)
	}
	str.SetPriority(urgencyBulk, true)
	s := &Stream{m: m, c: c, ctx: ctx, str: str, kind: kind}
	s.stop = context.AfterFunc(ctx, func() { s.Abort(context.Cause(ctx)) })
	if _, err := str.Write(frame); err != nil {
		s.Abort(err)
		return nil, netErr(ctx, "open stream", c, err)
	}
	c.p.bytesOut.Add(uint64(len(frame)))
	return s, nil
}

// Write sends body bytes. After the receiver's handler returned early it
// fails with ErrStreamAborted; CloseAndWait then returns the handler's reply.
func (s *Stream) Write(b []byte) (int, error) {
	n, err := s.str.Write(b)
	s.c.p.bytesOut.Add(uint64(n))
	if err != nil {
		if s.ctx.Err() != nil {
			return n, fmt.Errorf("stream to site %q: %w", s.c.p.name, context.Cause(s.ctx))
		}
		var se *quic.StreamError
		if errors.As(err, &se) && se.Remote {
			return n, fmt.Errorf("stream to site %q: %w: receiver stopped reading", s.c.p.name, ErrStreamAborted)
		}
		if errors.As(err, &se) && se.ErrorCode == streamAborted {
			return n, fmt.Errorf("stream to site %q: %w", s.c.p.name, ErrStreamAborted)
		}
		return n, netErr(s.ctx, "stream", s.c, err)
	}
	return n, nil
}

// CloseAndWait ends the body and waits for the receiving handler's reply:
// its reply, or its error as a *RemoteError. ctx bounds the wait.
func (s *Stream) CloseAndWait(ctx context.Context) ([]byte, error) {
	defer s.release()
	defer s.stop()
	_ = s.str.Close()
	stop := context.AfterFunc(ctx, func() { s.Abort(context.Cause(ctx)) })
	defer stop()
	reply, err := s.m.readResponse(ctx, s.c, s.str, s.kind, "stream")
	if err != nil && ctx.Err() == nil {
		switch {
		case s.ctx.Err() != nil:
			err = fmt.Errorf("stream to site %q: %w", s.c.p.name, context.Cause(s.ctx))
		case s.aborted.Load():
			err = fmt.Errorf("stream to site %q: %w", s.c.p.name, ErrStreamAborted)
		}
	}
	return reply, err
}

// Abort cancels the stream in both directions; the receiver's body reader
// fails with ErrStreamAborted and its reply is discarded. err is only
// logged. Abort after CloseAndWait returned is a no-op.
func (s *Stream) Abort(err error) {
	s.once.Do(func() {
		s.aborted.Store(true)
		s.str.CancelWrite(streamAborted)
		s.str.CancelRead(streamAborted)
		s.m.log.Debug("stream aborted", "peer", s.c.p.name, "kind", s.kind, "error", err)
		s.release()
	})
}

// serveStream serves a bidirectional stream opened by the peer: a request or
// a bulk stream.
func (m *Mesh) serveStream(ctx context.Context, c *conn, str *quic.Stream) {
	c.active.Add(1)
	defer c.active.Add(-1)
	str.SetPriority(urgencyControl, true)
	_ = str.SetReadDeadline(time.Now().Add(headerTimeout))
	t, body, err := m.codec.readFrame(str)
	if err != nil {
		m.refuseStream(c, str, m.frameRejected(err))
		return
	}
	c.p.bytesIn.Add(uint64(frameHeaderLen + len(body)))
	if t != frameRequest && t != frameStreamOpen {
		m.metrics.rejected("unexpected")
		m.refuseStream(c, str, frameErr("unexpected", "%s opens a stream", t))
		return
	}
	req, err := decodeRequest(body)
	if err != nil {
		m.refuseStream(c, str, m.frameRejected(err))
		return
	}
	if t == frameRequest {
		if err := expectEOF(str); err != nil {
			m.refuseStream(c, str, m.frameRejected(err))
			return
		}
	}
	_ = str.SetReadDeadline(time.Time{})

	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(str.Context(), cancel) // the requester canceled or gave up
	defer stop()
	if req.Timeout > 0 {
		var c2 context.CancelFunc
		hctx, c2 = context.WithTimeout(hctx, req.Timeout)
		defer c2()
	}

	var reply []byte
	var status Status
	var herr error
	m.hmu.RLock()
	h, sh := m.handlers[req.Kind], m.streamHandlers[req.Kind]
	m.hmu.RUnlock()
	switch {
	case t == frameRequest && h != nil:
		reply, herr = h(hctx, c.p.name, req.Payload)
	case t == frameStreamOpen && sh != nil:
		b := &bodyReader{str: str, c: c}
		reply, herr = sh(hctx, c.p.name, req.Payload, b)
		if !b.eof {
			str.CancelRead(streamDone)
		}
	default:
		status, herr = StatusNoHandler, fmt.Errorf("site %q has no %s handler for kind %d", m.cfg.Site, t, req.Kind)
		if t == frameStreamOpen {
			str.CancelRead(streamDone)
		}
	}
	if herr != nil {
		if status == StatusOK {
			status = StatusError
		}
		reply = []byte(herr.Error())
	}
	m.respond(c, str, status, reply)
}

func (m *Mesh) respond(c *conn, str *quic.Stream, status Status, reply []byte) {
	frame, err := m.codec.appendFrame(nil, frameResponse, response{Status: status, Payload: reply}.append(nil), c.zstd)
	if err != nil {
		// Our own reply is over MaxFrame: tell the requester instead.
		frame, _ = m.codec.appendFrame(nil, frameResponse, response{Status: StatusError, Payload: []byte(err.Error())}.append(nil), c.zstd)
	}
	if _, err := str.Write(frame); err != nil {
		str.CancelWrite(streamCanceled)
		return
	}
	c.p.bytesOut.Add(uint64(len(frame)))
	_ = str.Close()
}

// refuseStream answers a stream whose first frame was bad, and logs it.
func (m *Mesh) refuseStream(c *conn, str *quic.Stream, err error) {
	var fe *FrameError
	if !errors.As(err, &fe) { // the stream broke (reset, timeout, connection lost)
		str.CancelRead(streamRejected)
		str.CancelWrite(streamRejected)
		return
	}
	m.log.Warn("rejected frame", "peer", c.p.name, "reason", fe.Reason, "error", err)
	str.CancelRead(streamRejected)
	status := StatusBadRequest
	if fe.Reason == "too_large" {
		status = StatusTooLarge
	}
	m.respond(c, str, status, []byte(fmt.Sprintf("site %q: %v", m.cfg.Site, err)))
}

// bodyReader is the reader a StreamHandler gets.
type bodyReader struct {
	str *quic.Stream
	c   *conn
	eof bool
}

// SetReadDeadline makes a Read blocked past t return: a handler that gives
// up on a stream (its transaction was aborted) unblocks its reader.
func (b *bodyReader) SetReadDeadline(t time.Time) error { return b.str.SetReadDeadline(t) }

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.str.Read(p)
	b.c.p.bytesIn.Add(uint64(n))
	if err == io.EOF {
		b.eof = true
		return n, err
	}
	if err != nil {
		var se *quic.StreamError
		if errors.As(err, &se) && se.Remote {
			return n, fmt.Errorf("stream from site %q: %w", b.c.p.name, ErrStreamAborted)
		}
		return n, fmt.Errorf("stream from site %q: %w: %w", b.c.p.name, ErrPeerUnavailable, err)
	}
	return n, nil
}

func (m *Mesh) serveNotify(ctx context.Context, c *conn, str *quic.ReceiveStream) {
	c.active.Add(1)
	defer c.active.Add(-1)
	_ = str.SetReadDeadline(time.Now().Add(headerTimeout))
	t, body, err := m.codec.readFrame(str)
	if err == nil {
		c.p.bytesIn.Add(uint64(frameHeaderLen + len(body)))
		if t != frameNotify {
			err = frameErr("unexpected", "%s on a unidirectional stream", t)
		}
	}
	var req request
	if err == nil {
		req, err = decodeRequest(body)
	}
	if err == nil {
		err = expectEOF(str)
	}
	if err != nil {
		str.CancelRead(streamRejected)
		var fe *FrameError
		if errors.As(m.frameRejected(err), &fe) {
			m.log.Warn("rejected notification", "peer", c.p.name, "reason", fe.Reason, "error", err)
		}
		return
	}
	m.hmu.RLock()
	h := m.handlers[req.Kind]
	m.hmu.RUnlock()
	if h == nil {
		m.log.Warn("notification without handler", "peer", c.p.name, "kind", req.Kind)
		return
	}
	if _, err := h(ctx, c.p.name, req.Payload); err != nil {
		m.log.Warn("notification handler failed", "peer", c.p.name, "kind", req.Kind, "error", err)
	}
}

// PeerState is a snapshot of one peer.
type PeerState struct {
	Name      string
	Addr      string
	Connected bool
	// Since is when Connected last changed; zero if never connected.
	Since    time.Time
	Instance uuid.UUID     // the peer's instance id; zero before the first connection
	Version  uint16        // negotiated protocol version while connected
	RTT      time.Duration // smoothed RTT while connected
	BytesIn  uint64        // frames and stream bodies received since New
	BytesOut uint64        // frames and stream bodies sent since New
}

// Peers returns the state of every configured peer, sorted by name.
func (m *Mesh) Peers() []PeerState {
	out := make([]PeerState, 0, len(m.names))
	for _, name := range m.names {
		p := m.peers[name]
		p.mu.Lock()
		s := PeerState{Name: p.name, Addr: p.addr, Since: p.since, Instance: p.lastInst}
		if c := p.cur; c != nil {
			s.Connected, s.Version = true, c.version
			s.RTT = c.qc.ConnectionStats().SmoothedRTT
		}
		p.mu.Unlock()
		s.BytesIn, s.BytesOut = p.bytesIn.Load(), p.bytesOut.Load()
		out = append(out, s)
	}
	return out
}

// EventKind says what happened to a peer.
type EventKind int

const (
	// EventUp: a connection to the peer is established (after HELLO).
	EventUp EventKind = iota + 1
	// EventDown: the last connection to the peer is gone. Err says why.
	EventDown
	// EventRestarted follows an EventUp when the peer is a different process
	// than at its previous connection (it restarted, and lost whatever it
	// held only in memory); NewInstance is set when its instance id changed
	// too (its state directory was replaced).
	EventRestarted
)

func (k EventKind) String() string {
	switch k {
	case EventUp:
		return "up"
	case EventDown:
		return "down"
	case EventRestarted:
		return "restarted"
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// PeerEvent is one change of a peer's connectivity.
type PeerEvent struct {
	Peer         string
	Kind         EventKind
	At           time.Time
	Instance     uuid.UUID // the peer's instance id (of the lost connection for EventDown)
	PrevInstance uuid.UUID // EventRestarted: the instance id before
	NewInstance  bool      // EventRestarted: Instance != PrevInstance
	Err          error     // EventDown: why
}

type subscription struct {
	ch   chan PeerEvent
	mu   sync.Mutex
	q    []PeerEvent
	wake chan struct{}
	done chan struct{}
}

// Subscribe returns every peer event from now on, in order per peer, never
// dropped (they queue while the reader is slow). Call cancel when done: it
// stops the delivery goroutine and closes the channel.
func (m *Mesh) Subscribe() (<-chan PeerEvent, func()) {
	s := &subscription{ch: make(chan PeerEvent), wake: make(chan struct{}, 1), done: make(chan struct{})}
	m.smu.Lock()
	m.subs[s] = struct{}{}
	m.smu.Unlock()
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		defer close(s.ch)
		for {
			s.mu.Lock()
			var ev PeerEvent
			ok := len(s.q) > 0
			if ok {
				ev, s.q = s.q[0], s.q[1:]
			}
			s.mu.Unlock()
			if !ok {
				select {
				case <-s.wake:
					continue
				case <-s.done:
					return
				}
			}
			select {
			case s.ch <- ev:
			case <-s.done:
				return
			}
		}
	}()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			m.smu.Lock()
			delete(m.subs, s)
			m.smu.Unlock()
			close(s.done)
			<-exited
		})
	}
}

// emit queues ev for every subscriber; it never blocks. Called with the
// peer's lock held, so events of one peer are queued in order.
func (m *Mesh) emit(ev PeerEvent) {
	m.smu.Lock()
	defer m.smu.Unlock()
	for s := range m.subs {
		s.mu.Lock()
		s.q = append(s.q, ev)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}
