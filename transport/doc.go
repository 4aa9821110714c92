// Package transport is the QUIC mesh between sites: mutual-TLS identity,
// one connection per site pair, typed size-limited frames for
// request/response and one-way messages, and uncompressed bulk byte streams
// for packs. It knows bytes and peers only, nothing of git.
//
// # Use
//
//	m, err := transport.New(cfg, log, reg) // checks config, loads certs and the instance id
//	m.Handle(KindPrepare, func(ctx context.Context, from string, p []byte) ([]byte, error) { … })
//	m.HandleStream(KindPack, func(ctx context.Context, from string, hdr []byte, body io.Reader) ([]byte, error) { … })
//	go m.Run(ctx)                          // listens, dials, reconnects; returns when ctx ends and all goroutines exited
//	reply, err := m.Request(ctx, "b", KindPrepare, payload)
//	err = m.Notify(ctx, "b", KindHint, payload)
//	s, err := m.OpenStream(ctx, "b", KindPack, hdr); io.Copy(s, pack); reply, err := s.CloseAndWait(ctx)
//	events, cancel := m.Subscribe()        // EventUp, EventDown, EventRestarted
//	states := m.Peers()                    // connected since, instance, RTT, bytes
//
// Register handlers before Run. Handlers run concurrently, one goroutine per
// incoming stream, at most 4096 open streams per peer (QUIC stream limit);
// they must respect ctx, which ends when the requester cancels, its deadline
// (carried as a relative timeout, immune to clock skew) passes, or the mesh
// stops. A handler must not keep payload or body after it returns.
//
// Every Stream must end with CloseAndWait or Abort. Its ctx (from
// OpenStream) bounds its whole life. A StreamHandler that returns before
// reading body to io.EOF stops the sender: its Writes fail with
// ErrStreamAborted and CloseAndWait returns the handler's reply or error.
// Calls on a Mesh before Run or after it returned fail with
// ErrPeerUnavailable. Subscriptions outlive Run; cancel them.
//
// # Errors
//
// ErrUnknownPeer (not in Config.Peers) and ErrPeerUnavailable (no
// connection, or lost mid-call: the remote handler may or may not have run)
// are sentinels to branch on; the caller retries or waits for EventUp. A
// handler's error arrives as *RemoteError with its text; errors.Is(err,
// ErrNoHandler) and errors.Is(err, ErrFrameTooLarge) hold for the peer's
// refusals. A context error is returned wrapped (errors.Is works).
//
// # Identity (DESIGN.md §4 invariant 7)
//
// TLS 1.3 only, ALPN "sitesync/1", no session resumption. A connection is
// accepted only if the peer's certificate chains to Config.CAFile and its
// common name is a site in Config.Peers; a dialed peer must also carry the
// name we dialed. Each refusal — a client without a certificate included
// (check=cert) — is logged once at Warn as "refused peer connection" with
// check=alpn|cert|ca|peer_name|hello|version and the remote address,
// counted in sitesync_transport_connections_refused_total{check}, and
// leaves no connection.
// A peer sending a frame over MaxFrame, of an unknown type or malformed gets
// an error reply saying so (StatusTooLarge, StatusBadRequest); its
// connection stays up. GenerateCerts writes a CA and per-site certificates
// for tests, demos and `sitesync certs init`.
//
// # Connections
//
// Both sides dial whenever they are not connected (capped exponential
// backoff, BackoffMin..BackoffMax, with jitter). After TLS each side sends a
// HELLO: site name (must equal the certificate's), instance id, boot id,
// protocol version range and capabilities. No common version: the acceptor
// closes the connection with a message naming both ranges, and both sides
// log it (check=version). Whoever dials first wins: a dial that completes
// while the peer is already connected is closed before its HELLO.
// Simultaneous dials (both past TLS) are resolved deterministically: of the
// connections of the same peer process, both sides use the one dialed by the
// lower site name; the dialer of the other closes it once no stream is
// active on it (after a 2 s grace), so nothing in flight fails. A connection
// from a new process of the peer (another boot id) replaces the old ones at
// once, without waiting for their idle timeout.
//
// The instance id is a UUID kept in StateDir/instance-id: it changes only
// when the site's state is wiped. The boot id is random per process. A peer
// seen with a different boot id than at its last connection gets
// EventRestarted after its EventUp (NewInstance set if the instance id
// changed too): whatever it held only in memory is gone.
//
// Liveness: QUIC keep-alives every KeepAlive; a peer silent for IdleTimeout
// (a partition, a crash) is reported down (EventDown) at most IdleTimeout
// after the last packet heard from it, and redialed with backoff.
//
// # Wire format
//
// Each request, notification, reply or stream header is one frame on its own
// QUIC stream: type u8, flags u8, length u32, body. The length is checked
// against MaxFrame before anything is read, and the buffer grows only with
// bytes actually received; bodies above 512 bytes are zstd-compressed when
// that helps. A compressed body must declare its size (≤ MaxFrame), the
// decoder writes no more than that, and at most 4 × MaxFrame of
// decompression output exists at once. A rejected frame is answered with a clear error and
// counted in sitesync_transport_frames_rejected_total{reason}. A bulk stream
// is a header frame followed by raw bytes up to FIN: never compressed (packs
// gain ~2%), never buffered whole (the receiving handler reads it as it
// arrives), sent at lower priority than control frames on the same
// connection.
//
// # Flow-control windows
//
// QUIC can only have a receive window's worth of bytes in flight, so a
// window must cover the bandwidth×delay product of the link. The defaults
// are sized for 1 Gbit/s at 200 ms RTT (San Francisco ↔ Bangalore):
//
//	1 Gbit/s = 125 MB/s;  125 MB/s × 0.200 s = 25 MB ≈ 23.8 MiB in flight
//	StreamWindow = 32 MiB  ≥ 23.8 MiB: one pack stream alone fills the link
//	ConnWindow   = 64 MiB  = 2 × StreamWindow: two full-speed streams, and a
//	                          stalled bulk stream can never take the whole
//	                          connection window from control frames
//
// Windows start small and auto-tune up to these maxima, so idle peers cost
// little memory; the worst case is ConnWindow per peer.
//
// # Metrics
//
// Through the injected prometheus.Registerer (nil: none):
// sitesync_transport_rtt_seconds{peer}, sitesync_transport_sent_bytes_total{peer},
// sitesync_transport_received_bytes_total{peer}, sitesync_transport_peer_up{peer},
// sitesync_transport_reconnects_total{peer},
// sitesync_transport_frames_rejected_total{reason},
// sitesync_transport_connections_refused_total{check}.
//
// # Concurrency
//
// Mesh is safe for concurrent use. Lock order: peer.mu, then the
// subscription lock; no lock is held while calling a handler or doing I/O.
// Run returns only after every goroutine it started has exited.
package transport
