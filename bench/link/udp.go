package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// UDPFlowIdle is how long a UDP mapping (client address → upstream socket)
// lives without traffic in either direction. Three minutes is Linux
// conntrack's timeout for an established UDP stream and well above QUIC idle
// timeouts (quic-go's default is 30 s), so a live QUIC connection never loses
// its mapping.
const UDPFlowIdle = 3 * time.Minute

// maxUDPFlows bounds the mapping table: each mapping holds a socket and a
// goroutine. Far above the handful of peers a site has.
const maxUDPFlows = 4096

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

// smallBuf is the size of pooled datagram buffers: QUIC packets fit (≤ 1500
// bytes on the paths it probes); larger datagrams get a buffer of their own.
const smallBuf = 2048

var datagramPool = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}

func copyDatagram(p []byte) *[]byte {
	var b *[]byte
	if len(p) <= smallBuf {
		b = datagramPool.Get().(*[]byte)
		*b = (*b)[:len(p)]
	} else {
		s := make([]byte, len(p))
		b = &s
	}
	copy(*b, p)
	return b
}

func freeDatagram(b *[]byte) {
	if cap(*b) == smallBuf {
		datagramPool.Put(b)
	}
}

// UDPRelay forwards datagrams between its clients and a target through a
// Link, keeping one upstream socket per client address.
type UDPRelay struct {
	relayBase
	ln  *net.UDPConn
	fwd *releaseQueue[fwdDatagram]
	rev *releaseQueue[revDatagram]

	idle time.Duration // UDPFlowIdle; shorter in tests

	mu    sync.Mutex
	flows map[netip.AddrPort]*udpFlow
	shut  bool
	wg    sync.WaitGroup
}

type udpFlow struct {
	client netip.AddrPort
	up     *net.UDPConn
	last   atomic.Int64 // unix nanoseconds of the last datagram either way
}

type fwdDatagram struct {
	f *udpFlow
	b *[]byte
}

type revDatagram struct {
	to netip.AddrPort
	b  *[]byte
}

// ListenUDP creates a UDP relay listening on cfg.Listen. Serve it with Run.
func ListenUDP(cfg Config) (*UDPRelay, error) {
	r := &UDPRelay{
		fwd:   newReleaseQueue[fwdDatagram](),
		rev:   newReleaseQueue[revDatagram](),
		flows: make(map[netip.AddrPort]*udpFlow),
		idle:  UDPFlowIdle,
	}
	listen, err := r.init(cfg, "udp")
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(listen))
	if err != nil {
		return nil, fmt.Errorf("udp relay: %w", err)
	}
	// Bigger socket buffers absorb bursts while the reader is descheduled on a
	// busy machine; the kernel caps them at net.core.rmem_max.
	_ = ln.SetReadBuffer(4 << 20)
	_ = ln.SetWriteBuffer(4 << 20)
	r.ln = ln
	return r, nil
}

// Addr is the address clients send to.
func (r *UDPRelay) Addr() net.Addr { return r.ln.LocalAddr() }

// Run forwards datagrams until ctx ends or Close is called, and returns after
// every goroutine of the relay has exited. It returns net.ErrClosed if the
// relay was closed or already run.
func (r *UDPRelay) Run(ctx context.Context) error {
	if !r.life.begin() {
		return fmt.Errorf("udp relay %v: %w", r.Addr(), net.ErrClosed)
	}
	defer close(r.life.done)
	stop := make(chan struct{})
	r.wg.Add(4)
	go func() { defer r.wg.Done(); r.readClients() }()
	go func() { defer r.wg.Done(); r.fwd.run(stop, r.deliverFwd) }()
	go func() { defer r.wg.Done(); r.rev.run(stop, r.deliverRev) }()
	go func() { defer r.wg.Done(); r.sweep(stop) }()

	select {
	case <-ctx.Done():
	case <-r.life.closing:
	}
	close(stop)
	_ = r.ln.Close()
	r.mu.Lock()
	r.shut = true
	for k, f := range r.flows {
		_ = f.up.Close()
		delete(r.flows, k)
		r.st.flows.Add(-1)
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

// Close stops the relay; it is idempotent and returns after Run has returned.
func (r *UDPRelay) Close() error {
	wait := r.life.close()
	if !wait {
		_ = r.ln.Close()
		return nil
	}
	<-r.life.done
	return nil
}

// arrive applies the direction's impairments to a datagram read at now and
// returns its release time; ok is false if it was dropped.
func (r *UDPRelay) arrive(p *pipe, c *dirCounters, now time.Time, n int) (time.Time, bool) {
	if r.link.Partitioned() {
		c.dropPart.Add(1)
		return time.Time{}, false
	}
	at, _, v := p.admit(now, n, true)
	switch v {
	case dropLoss:
		c.dropLoss.Add(1)
		return at, false
	case dropQueue:
		c.dropQueue.Add(1)
		return at, false
	}
	return at, true
}

func (r *UDPRelay) readClients() {
	buf := make([]byte, maxDatagram)
	c := &r.st.dir[AtoB]
	for {
		n, from, err := r.ln.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP errors from a client that went away surface here; they
			// concern that client only.
			continue
		}
		now := time.Now()
		f := r.flow(netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
		if f == nil {
			c.dropErr.Add(1)
			continue
		}
		f.last.Store(now.UnixNano())
		at, ok := r.arrive(r.out, c, now, n)
		if !ok {
			continue
		}
		r.fwd.push(at, n, fwdDatagram{f: f, b: copyDatagram(buf[:n])})
	}
}

// flow returns the mapping of a client, creating it; nil if the table is full
// or the relay is shutting down.
func (r *UDPRelay) flow(client netip.AddrPort) *udpFlow {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.flows[client]; f != nil {
		return f
	}
	if r.shut {
		return nil
	}
	if len(r.flows) >= maxUDPFlows {
		r.log.Warn("udp mapping table full, dropping", "client", client.String(), "flows", len(r.flows))
		return nil
	}
	up, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(r.target))
	if err != nil {
		r.log.Warn("open upstream socket", "client", client.String(), "error", err)
		return nil
	}
	_ = up.SetReadBuffer(4 << 20)
	_ = up.SetWriteBuffer(4 << 20)
	f := &udpFlow{client: client, up: up}
	r.flows[client] = f
	r.st.flows.Add(1)
	r.st.accepted.Add(1)
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.readUpstream(f) }()
	return f
}

func (r *UDPRelay) readUpstream(f *udpFlow) {
	buf := make([]byte, maxDatagram)
	c := &r.st.dir[BtoA]
	for {
		n, err := f.up.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ECONNREFUSED: the target is not listening (yet)
		}
		now := time.Now()
		f.last.Store(now.UnixNano())
		at, ok := r.arrive(r.in, c, now, n)
		if !ok {
			continue
		}
		r.rev.push(at, n, revDatagram{to: f.client, b: copyDatagram(buf[:n])})
	}
}

func (r *UDPRelay) deliverFwd(d fwdDatagram) bool {
	c := &r.st.dir[AtoB]
	r.deliver(c, d.b, func(p []byte) error { _, err := d.f.up.Write(p); return err })
	return true
}

func (r *UDPRelay) deliverRev(d revDatagram) bool {
	c := &r.st.dir[BtoA]
	r.deliver(c, d.b, func(p []byte) error { _, err := r.ln.WriteToUDPAddrPort(p, d.to); return err })
	return true
}

func (r *UDPRelay) deliver(c *dirCounters, b *[]byte, write func([]byte) error) {
	defer freeDatagram(b)
	if r.link.Partitioned() { // in flight when the link was cut
		c.dropPart.Add(1)
		return
	}
	if err := write(*b); err != nil {
		c.dropErr.Add(1)
		return
	}
	c.delivered(len(*b))
}

// sweep closes mappings idle for r.idle.
func (r *UDPRelay) sweep(stop <-chan struct{}) {
	t := time.NewTicker(r.idle / 4)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			r.mu.Lock()
			for k, f := range r.flows {
				if now.Sub(time.Unix(0, f.last.Load())) > r.idle {
					_ = f.up.Close()
					delete(r.flows, k)
					r.st.flows.Add(-1)
				}
			}
			r.mu.Unlock()
		}
	}
}
