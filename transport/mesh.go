package transport

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"
)

// Connection close codes (QUIC application error codes).
const (
	codeShutdown   quic.ApplicationErrorCode = 0x100 // the site is stopping
	codeDuplicate  quic.ApplicationErrorCode = 0x101 // simultaneous dial lost the tie-break
	codeSuperseded quic.ApplicationErrorCode = 0x102 // the peer restarted; this connection is from its old process
	codeVersion    quic.ApplicationErrorCode = 0x103 // no common protocol version
	codeRefused    quic.ApplicationErrorCode = 0x104 // bad or missing HELLO, or a connection to ourselves
)

// Stream reset codes.
const (
	streamCanceled quic.StreamErrorCode = 1 // the requester's context ended
	streamAborted  quic.StreamErrorCode = 2 // Stream.Abort
	streamDone     quic.StreamErrorCode = 3 // the receiver's handler returned before reading the whole body
	streamRejected quic.StreamErrorCode = 4 // the frame was refused
)

const (
	// helloTimeout bounds the HELLO exchange after the TLS handshake: a few
	// round trips on a 200 ms link, generous for a loaded peer.
	helloTimeout = 10 * time.Second
	// headerTimeout bounds how long a peer may take to send the first frame
	// of a stream it opened: a 16 MiB frame over a slow 10 Mbit/s link takes
	// ~13 s, so 30 s; it frees the goroutine of a stream opened and left idle.
	headerTimeout = 30 * time.Second
	// maxIncomingStreams bounds the concurrent streams (so handler
	// goroutines) one peer may have open at this site, per direction.
	maxIncomingStreams = 4096
	// Stream priorities (RFC 9218 urgency, lower first): control requests
	// and replies overtake bulk bodies queued on the same connection.
	urgencyControl = 2
	urgencyBulk    = 4
)

// Mesh is this site's end of the QUIC mesh. Create it with New, register
// handlers, then call Run. Safe for concurrent use.
type Mesh struct {
	cfg      Config
	log      *slog.Logger
	id       *identity
	codec    *codec
	metrics  *metrics
	instance uuid.UUID
	boot     uint64
	quicConf *quic.Config

	// version range advertised in HELLO; a field so tests can pose as
	// another release.
	minVersion, version uint16

	peers map[string]*peer // fixed by New
	names []string         // sorted peer names

	hmu            sync.RWMutex
	handlers       map[Kind]Handler
	streamHandlers map[Kind]StreamHandler

	smu  sync.Mutex
	subs map[*subscription]struct{}

	started atomic.Bool
	runCtx  context.Context // set by Run before it starts any goroutine
	tr      *quic.Transport
	wg      sync.WaitGroup
	live    atomic.Int64 // QUIC connections not yet closed, for tests
}

// Handler serves a request or notification of one kind from site from. ctx
// ends when the requester gives up, its deadline passes or the mesh stops.
// The reply of a notification is dropped. An error reaches the requester as
// a *RemoteError carrying err.Error().
type Handler func(ctx context.Context, from string, payload []byte) ([]byte, error)

// StreamHandler serves a bulk stream: header is the sender's header, body
// yields the raw bytes until the sender's CloseAndWait (io.EOF) or an error
// (ErrStreamAborted when the sender aborted). The reply or error is what the
// sender's CloseAndWait returns. Returning before body is drained stops the
// sender's writes.
type StreamHandler func(ctx context.Context, from string, header []byte, body io.Reader) ([]byte, error)

type peer struct {
	name, addr string
	bytesIn    atomic.Uint64
	bytesOut   atomic.Uint64

	mu       sync.Mutex
	conns    []*conn       // connections past HELLO, not yet closed
	cur      *conn         // the one in use: best(conns)
	changed  chan struct{} // closed and replaced whenever cur changes
	since    time.Time     // when cur last went from nil to set or back
	seen     bool          // a connection was established once
	lastBoot uint64
	lastInst uuid.UUID
}

type conn struct {
	qc      *quic.Conn
	p       *peer
	dialer  string // the site that dialed this connection
	hello   hello  // the peer's HELLO
	version uint16 // negotiated protocol version
	zstd    bool   // the peer decodes zstd frames
	at      time.Time

	active   atomic.Int64 // streams in use at this site, both directions
	draining atomic.Bool  // a drain goroutine is waiting to close it
}

// New checks cfg, loads the certificates and the instance id (creating it on
// first start) and returns a Mesh that is not yet listening. log and reg may
// be nil.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Mesh, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Mesh{
		cfg:            cfg,
		log:            log.With("component", "transport", "site", cfg.Site),
		peers:          make(map[string]*peer, len(cfg.Peers)),
		handlers:       map[Kind]Handler{},
		streamHandlers: map[Kind]StreamHandler{},
		subs:           map[*subscription]struct{}{},
		minVersion:     protoMinVersion,
		version:        protoVersion,
	}
	for _, p := range cfg.Peers {
		m.peers[p.Name] = &peer{name: p.Name, addr: p.Addr, changed: make(chan struct{})}
		m.names = append(m.names, p.Name)
	}
	sort.Strings(m.names)
	var err error
	if m.id, err = loadIdentity(cfg); err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	if m.instance, err = loadInstanceID(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	m.boot = binary.BigEndian.Uint64(b[:])
	if m.codec, err = newCodec(cfg.MaxFrame); err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	if m.metrics, err = newMetrics(reg, m); err != nil {
		return nil, fmt.Errorf("transport: register metrics: %w", err)
	}
	m.quicConf = quicConfig(cfg)
	return m, nil
}

// quicConfig is the QUIC configuration of every mesh connection.
func quicConfig(cfg Config) *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout: cfg.DialTimeout,
		// QUIC restarts its idle timer when it sends the first keep-alive
		// after the last packet it received, so a silent peer would be
		// declared down up to IdleTimeout+KeepAlive after it went quiet.
		// Subtracting KeepAlive makes IdleTimeout the bound.
		MaxIdleTimeout:             cfg.IdleTimeout - cfg.KeepAlive,
		KeepAlivePeriod:            cfg.KeepAlive,
		MaxStreamReceiveWindow:     cfg.StreamWindow,
		MaxConnectionReceiveWindow: cfg.ConnWindow,
		MaxIncomingStreams:         maxIncomingStreams,
		MaxIncomingUniStreams:      maxIncomingStreams,
	}
}

// instanceFile is the name of the instance id file in Config.StateDir.
const instanceFile = "instance-id"

func loadInstanceID(dir string) (uuid.UUID, error) {
	path := filepath.Join(dir, instanceFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id, err := uuid.ParseBytes([]byte(strings.TrimSpace(string(b))))
		if err != nil {
			return uuid.Nil, fmt.Errorf("instance id file %q: %w", path, err)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return uuid.Nil, fmt.Errorf("read instance id: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return uuid.Nil, fmt.Errorf("create state dir: %w", err)
	}
	id := uuid.New()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id.String()+"\n"), 0o644); err != nil {
		return uuid.Nil, fmt.Errorf("write instance id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return uuid.Nil, fmt.Errorf("write instance id: %w", err)
	}
	return id, nil
}

// InstanceID is this site's persistent instance id (see doc.go).
func (m *Mesh) InstanceID() uuid.UUID { return m.instance }

// Handle registers h for requests and notifications of kind. It panics if
// kind is 0 or already registered (a programming error, as with
// http.ServeMux). Register before Run so no early request finds no handler.
func (m *Mesh) Handle(kind Kind, h Handler) {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	m.checkKindLocked(kind)
	m.handlers[kind] = h
}

// HandleStream registers h for bulk streams of kind; see Handle.
func (m *Mesh) HandleStream(kind Kind, h StreamHandler) {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	m.checkKindLocked(kind)
	m.streamHandlers[kind] = h
}

func (m *Mesh) checkKindLocked(kind Kind) {
	if kind == 0 {
		panic("transport: handler for kind 0")
	}
	if m.handlers[kind] != nil || m.streamHandlers[kind] != nil {
		panic(fmt.Sprintf("transport: kind %d registered twice", kind))
	}
}

// Run listens on Config.Listen, keeps a connection to every peer and serves
// handlers until ctx ends; then it closes every connection and returns after
// every goroutine it started (handlers included) has exited. Run may be
// called once. It returns nil when ctx ended, or the error that stopped it
// from listening.
func (m *Mesh) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("transport: Run called twice")
	}
	defer m.codec.close()
	laddr, err := net.ResolveUDPAddr("udp", m.cfg.Listen)
	if err != nil {
		return fmt.Errorf("transport: listen address: %w", err)
	}
	udp, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return fmt.Errorf("transport: listen: %w", err)
	}
	defer udp.Close()
	m.tr = &quic.Transport{Conn: udp}
	ln, err := m.tr.Listen(m.serverTLS(), m.quicConf)
	if err != nil {
		m.tr.Close()
		return fmt.Errorf("transport: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.runCtx = ctx
	m.log.Info("mesh listening", "addr", udp.LocalAddr().String(), "instance", m.instance.String(), "peers", m.names)

	m.wg.Go(func() { m.acceptLoop(ctx, ln) })
	for _, name := range m.names {
		p := m.peers[name]
		m.wg.Go(func() { m.dialLoop(ctx, p) })
	}
	<-ctx.Done()

	for _, name := range m.names {
		p := m.peers[name]
		p.mu.Lock()
		conns := slices.Clone(p.conns)
		p.mu.Unlock()
		for _, c := range conns {
			_ = c.qc.CloseWithError(codeShutdown, "site "+m.cfg.Site+" shutting down")
		}
	}
	_ = ln.Close()
	_ = m.tr.Close() // closes every connection still handshaking
	m.wg.Wait()
	m.log.Info("mesh stopped")
	return nil
}

func (m *Mesh) acceptLoop(ctx context.Context, ln *quic.Listener) {
	for {
		qc, err := ln.Accept(ctx)
		if err != nil {
			return // listener closed or ctx done
		}
		m.wg.Go(func() {
			c, err := m.handshake(ctx, qc, nil)
			if err != nil {
				m.log.Debug("incoming connection failed", "remote", qc.RemoteAddr().String(), "error", err)
				return
			}
			m.serve(c)
		})
	}
}

func (m *Mesh) dialLoop(ctx context.Context, p *peer) {
	backoff := m.cfg.BackoffMin
	failures := 0
	for {
		// Wait while connected (dialed by either side).
		for {
			p.mu.Lock()
			cur, ch := p.cur, p.changed
			p.mu.Unlock()
			if cur == nil {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
		c, err := m.dial(ctx, p)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff, failures = m.cfg.BackoffMin, 0
			m.serve(c)
			continue
		}
		if errors.Is(err, errAlreadyConnected) {
			continue
		}
		failures++
		var r *refusal
		if errors.As(err, &r) {
			err = nil // logged where it was refused; only the retry is news here
		}
		lvl := slog.LevelDebug
		if failures == 1 {
			lvl = slog.LevelWarn
		}
		m.log.Log(ctx, lvl, "dial peer failed", "peer", p.name, "addr", p.addr, "failures", failures, "retry_in", backoff, "error", err, "refused", r != nil)
		// Equal jitter (a random point in the upper half) keeps restarted sites from dialing
		// in lockstep while never waiting less than half the backoff.
		wait := backoff/2 + mrand.N(backoff/2+1)
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ch: // the peer connected to us meanwhile
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
		backoff = min(backoff*2, m.cfg.BackoffMax)
	}
}

func (m *Mesh) dial(ctx context.Context, p *peer) (*conn, error) {
	addr, err := net.ResolveUDPAddr("udp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", p.addr, err)
	}
	dctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout)
	defer cancel()
	qc, err := m.tr.Dial(dctx, addr, m.clientTLS(p, addr), m.quicConf)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	already := p.cur != nil
	p.mu.Unlock()
	if already {
		// The peer's dial won the race before ours finished: keep its
		// connection rather than starting a tie-break.
		_ = qc.CloseWithError(codeDuplicate, "already connected")
		return nil, errAlreadyConnected
	}
	return m.handshake(ctx, qc, p)
}

var errAlreadyConnected = errors.New("already connected")

// handshake runs the HELLO exchange on a new connection (dialed to p, or
// accepted when p is nil) and registers it. On failure the connection is
// closed and the reason logged.
func (m *Mesh) handshake(ctx context.Context, qc *quic.Conn, p *peer) (c *conn, err error) {
	dialed := p != nil
	m.live.Add(1)
	m.wg.Go(func() {
		<-qc.Context().Done()
		m.live.Add(-1)
	})
	remote := qc.RemoteAddr()
	certs := qc.ConnectionState().TLS.PeerCertificates
	if len(certs) == 0 { // cannot happen: TLS verified a chain
		_ = qc.CloseWithError(codeRefused, "no certificate")
		return nil, errors.New("no peer certificate")
	}
	name := certs[0].Subject.CommonName
	if p == nil {
		p = m.peers[name]
	}
	if p == nil || name == m.cfg.Site {
		err := &refusal{check: checkPeerName, err: fmt.Errorf("connection from site %q, which is this site or not a peer", name)}
		m.logRefusal(err, remote, name)
		_ = qc.CloseWithError(codeRefused, err.Error())
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	dialer := m.cfg.Site
	var theirs hello
	if dialed {
		theirs, err = m.helloAsDialer(hctx, qc)
	} else {
		dialer = name
		theirs, err = m.helloAsAcceptor(hctx, qc)
	}
	if err == nil && theirs.Site != name {
		err = &refusal{check: checkHello, err: fmt.Errorf("hello names site %q, certificate names %q", theirs.Site, name)}
	}
	var version uint16
	if err == nil {
		version, err = m.negotiate(theirs)
	}
	if err != nil {
		code := codeRefused
		var r *refusal
		if errors.As(err, &r) && r.check == checkVersion {
			code = codeVersion
		}
		if !errors.As(err, &r) {
			// The peer closed the connection: its reason says why.
			var ae *quic.ApplicationError
			if errors.As(err, &ae) && ae.Remote && (ae.ErrorCode == codeDuplicate || ae.ErrorCode == codeShutdown) {
				m.log.Debug("connection closed by peer during hello", "peer", name, "error", err)
				return nil, err // the peer kept another connection, or is stopping: no refusal
			}
			if errors.As(err, &ae) && ae.Remote && ae.ErrorCode == codeVersion {
				err = &refusal{check: checkVersion, err: fmt.Errorf("%w: peer %q says: %s", ErrIncompatibleVersion, name, ae.ErrorMessage)}
			} else {
				err = &refusal{check: checkHello, err: fmt.Errorf("hello with %q: %w", name, err)}
			}
		}
		m.logRefusal(err, remote, name)
		_ = qc.CloseWithError(code, err.Error())
		return nil, err
	}
	c = &conn{qc: qc, p: p, dialer: dialer, hello: theirs, version: version, zstd: slices.Contains(theirs.Caps, capZstd), at: time.Now()}
	m.register(c)
	return c, nil
}

func (m *Mesh) ourHello() hello {
	return hello{MinVersion: m.minVersion, Version: m.version, Site: m.cfg.Site, Instance: m.instance, Boot: m.boot, Caps: []string{capZstd}}
}

func (m *Mesh) negotiate(h hello) (uint16, error) {
	lo, hi := max(m.minVersion, h.MinVersion), min(m.version, h.Version)
	if lo > hi {
		return 0, &refusal{check: checkVersion, err: fmt.Errorf("%w: site %q speaks versions %d..%d, site %q speaks %d..%d",
			ErrIncompatibleVersion, h.Site, h.MinVersion, h.Version, m.cfg.Site, m.minVersion, m.version)}
	}
	return hi, nil
}

func (m *Mesh) helloAsDialer(ctx context.Context, qc *quic.Conn) (hello, error) {
	str, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return hello{}, err
	}
	stop := context.AfterFunc(ctx, func() { str.CancelRead(streamCanceled); str.CancelWrite(streamCanceled) })
	defer stop()
	if err := m.codec.writeFrame(str, frameHello, m.ourHello().append(nil)); err != nil {
		return hello{}, err
	}
	_ = str.Close()
	return m.readHello(str)
}

func (m *Mesh) helloAsAcceptor(ctx context.Context, qc *quic.Conn) (hello, error) {
	str, err := qc.AcceptStream(ctx)
	if err != nil {
		return hello{}, err
	}
	stop := context.AfterFunc(ctx, func() { str.CancelRead(streamCanceled); str.CancelWrite(streamCanceled) })
	defer stop()
	h, err := m.readHello(str)
	if err != nil {
		return h, err
	}
	if _, err := m.negotiate(h); err != nil {
		return h, err // closing the connection tells the peer why
	}
	if err := m.codec.writeFrame(str, frameHello, m.ourHello().append(nil)); err != nil {
		return hello{}, err
	}
	_ = str.Close()
	return h, nil
}

func (m *Mesh) readHello(str *quic.Stream) (hello, error) {
	t, body, err := m.codec.readFrame(str)
	if err != nil {
		return hello{}, m.frameRejected(err)
	}
	if t != frameHello {
		m.metrics.rejected("unexpected")
		return hello{}, &refusal{check: checkHello, err: fmt.Errorf("first frame is %s, want hello", t)}
	}
	h, err := decodeHello(body)
	if err != nil {
		return h, &refusal{check: checkHello, err: m.frameRejected(err)}
	}
	if err := expectEOF(str); err != nil {
		return h, &refusal{check: checkHello, err: err}
	}
	return h, nil
}

// frameRejected counts err if it is a FrameError and returns it.
func (m *Mesh) frameRejected(err error) error {
	var fe *FrameError
	if errors.As(err, &fe) {
		m.metrics.rejected(fe.Reason)
	}
	return err
}

// expectEOF reads the end of a stream's receive side, so the stream is
// fully closed and its credit returned to the peer.
func expectEOF(r io.Reader) error {
	var b [1]byte
	n, err := r.Read(b[:])
	if n > 0 {
		return frameErr("malformed", "data after the last frame")
	}
	if err == io.EOF {
		return nil
	}
	if err == nil {
		n, err = r.Read(b[:])
		if n == 0 && err == io.EOF {
			return nil
		}
		if n > 0 {
			return frameErr("malformed", "data after the last frame")
		}
	}
	return err
}

// best picks the connection both sides agree to use: among the connections
// of the peer's current process, the one dialed by the lower site name,
// newest first.
func (m *Mesh) best(p *peer) *conn {
	pref := min(m.cfg.Site, p.name)
	var b *conn
	for _, c := range p.conns {
		switch {
		case b == nil:
			b = c
		case (c.dialer == pref) != (b.dialer == pref):
			if c.dialer == pref {
				b = c
			}
		case c.at.After(b.at):
			b = c
		}
	}
	return b
}

func (m *Mesh) register(c *conn) {
	p := c.p
	var closeOld, closeDup []*conn
	p.mu.Lock()
	prev := p.cur
	kept := p.conns[:0:0]
	for _, o := range p.conns {
		if o.hello.Boot != c.hello.Boot || o.hello.Instance != c.hello.Instance {
			closeOld = append(closeOld, o) // from the peer's previous process
		} else {
			kept = append(kept, o)
		}
	}
	p.conns = append(kept, c)
	p.cur = m.best(p)
	for _, o := range p.conns {
		if o != p.cur && o.dialer == m.cfg.Site {
			closeDup = append(closeDup, o) // we dialed it and it lost the tie-break
		}
	}
	m.log.Debug("connection registered", "peer", p.name, "dialer", c.dialer, "conns", len(p.conns), "using_dialer", p.cur.dialer, "closing_dup", len(closeDup), "closing_old", len(closeOld))
	now := time.Now()
	switch {
	case prev == nil:
		p.since = now
		m.upLocked(p, now)
	case prev.hello.Boot != p.cur.hello.Boot || prev.hello.Instance != p.cur.hello.Instance:
		m.emit(PeerEvent{Peer: p.name, Kind: EventDown, At: now, Instance: prev.hello.Instance, Err: errors.New("peer restarted")})
		p.since = now
		m.upLocked(p, now)
	}
	if prev != p.cur {
		close(p.changed)
		p.changed = make(chan struct{})
	}
	p.mu.Unlock()
	for _, o := range closeOld {
		_ = o.qc.CloseWithError(codeSuperseded, "peer restarted")
	}
	for _, o := range closeDup {
		m.drain(o)
	}
}

// dupGrace is how long a connection that lost the tie-break stays open
// before its dialer closes it: the peer switches to the winner when it sees
// the winner's HELLO, about one round trip after we did; 2 s covers a
// 200 ms link with loss. Streams still active then are waited for.
const dupGrace = 2 * time.Second

// drain closes c, which lost the tie-break, once the peer had time to stop
// opening streams on it and none is active here, so nothing in flight fails.
// If c becomes the best connection again meanwhile, it stays.
func (m *Mesh) drain(c *conn) {
	if !c.draining.CompareAndSwap(false, true) {
		return
	}
	m.wg.Go(func() {
		defer c.draining.Store(false)
		deadline := time.Now().Add(dupGrace)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-c.qc.Context().Done():
				return
			case <-t.C:
			}
			c.p.mu.Lock()
			isCur := c.p.cur == c
			c.p.mu.Unlock()
			if isCur {
				return
			}
			if time.Now().After(deadline) && c.active.Load() == 0 {
				_ = c.qc.CloseWithError(codeDuplicate, "duplicate connection, keeping the one dialed by "+min(m.cfg.Site, c.p.name))
				return
			}
		}
	})
}

// upLocked records that p is connected through p.cur and emits the events.
func (m *Mesh) upLocked(p *peer, now time.Time) {
	h := p.cur.hello
	restarted := p.seen && (h.Boot != p.lastBoot || h.Instance != p.lastInst)
	if p.seen {
		m.metrics.reconnected(p.name)
	}
	prevInst := p.lastInst
	p.seen, p.lastBoot, p.lastInst = true, h.Boot, h.Instance
	m.log.Info("peer up", "peer", p.name, "instance", h.Instance.String(), "remote", p.cur.qc.RemoteAddr().String(), "dialer", p.cur.dialer, "version", p.cur.version)
	m.emit(PeerEvent{Peer: p.name, Kind: EventUp, At: now, Instance: h.Instance})
	if restarted {
		m.log.Info("peer restarted", "peer", p.name, "instance", h.Instance.String(), "prev_instance", prevInst.String())
		m.emit(PeerEvent{Peer: p.name, Kind: EventRestarted, At: now, Instance: h.Instance, PrevInstance: prevInst, NewInstance: h.Instance != prevInst})
	}
}

func (m *Mesh) unregister(c *conn, cause error) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	i := slices.Index(p.conns, c)
	if i < 0 {
		return
	}
	p.conns = slices.Delete(p.conns, i, i+1)
	if p.cur != c {
		return
	}
	p.cur = m.best(p)
	close(p.changed)
	p.changed = make(chan struct{})
	if p.cur == nil {
		now := time.Now()
		p.since = now
		level := slog.LevelWarn
		var ae *quic.ApplicationError
		if errors.As(cause, &ae) && ae.ErrorCode == codeShutdown {
			level = slog.LevelInfo // an orderly stop, ours or the peer's
		}
		m.log.Log(context.Background(), level, "peer down", "peer", p.name, "error", cause)
		m.emit(PeerEvent{Peer: p.name, Kind: EventDown, At: now, Instance: c.hello.Instance, Err: cause})
	}
}

// serve runs the goroutines of an established connection.
func (m *Mesh) serve(c *conn) {
	ctx := m.runCtx
	m.wg.Go(func() {
		<-c.qc.Context().Done()
		m.unregister(c, context.Cause(c.qc.Context()))
	})
	m.wg.Go(func() {
		for {
			str, err := c.qc.AcceptStream(ctx)
			if err != nil {
				return
			}
			m.wg.Go(func() { m.serveStream(ctx, c, str) })
		}
	})
	m.wg.Go(func() {
		for {
			str, err := c.qc.AcceptUniStream(ctx)
			if err != nil {
				return
			}
			m.wg.Go(func() { m.serveNotify(ctx, c, str) })
		}
	})
}
