// Package link emulates wide-area links between sites on one machine. The
// kernel of the benchmark hosts has no netem, so every impairment is applied in
// user space by relays that listen on loopback and forward to a target: a site
// reaches a peer's QUIC port (UDP), HTTP port (TCP) or the refdb (TCP) only
// through a relay, so every byte pays the emulated WAN.
//
// # Model
//
// A [Link] is one emulated cable between two sides, a and b, with an
// independent [Profile] per direction (one-way delay, jitter, loss, bandwidth)
// and a partition switch. A relay ([UDPRelay], [TCPRelay]) is one forwarded
// port on a Link: its clients are side a and its target side b, unless
// [Config].Reverse says the clients are on side b. Several relays may share one
// Link; they then share its bandwidth, queue and partition, like the QUIC and
// HTTP traffic of a site pair sharing one physical path.
//
// Each direction is a FIFO serializer followed by a delay line. Data arriving
// at time t waits for the serializer (bandwidth), takes size/bandwidth to be
// sent, then travels delay±jitter. Release times are computed once, from the
// arrival time, and honoured by a timer-driven release queue, so timing error
// does not accumulate from packet to packet. Timers are armed early by a
// running estimate of the median wake-up lateness of the process, so a hop is
// on time to a fraction of a millisecond rather than late by the runtime's and
// the scheduler's slack (an RTT through a relay is within ±2 ms of the
// configured delays, measured as the median of 21 round trips).
//
//   - Delay and jitter: jitter is uniform in [-Jitter, +Jitter] (never below
//     zero total delay). Data is never reordered: a packet whose jittered
//     release would overtake its predecessor in the same direction waits for
//     it, so with jitter the delay distribution is skewed slightly upward for
//     packets sent closer together than the jitter.
//   - Bandwidth: the serializer queue holds at most [QueueTime] of traffic at
//     the configured bandwidth (like a router's buffer). UDP datagrams arriving
//     to a full queue are dropped (drop-tail); a TCP relay instead stops
//     reading its source, which pushes back through the kernel's socket buffers
//     exactly as a slow path would. A TCP source that keeps filling the relay's
//     reads keeps the serializer busy even when the relay itself runs late, so
//     a transfer reaches the bandwidth on a loaded machine too.
//   - Loss applies to UDP only, per datagram, with the configured probability
//     (lost datagrams still used their share of the bandwidth). TCP would
//     retransmit the lost segment; an in-order byte stream relayed in user space
//     cannot express that, so a TCP relay never loses bytes.
//   - Partition stops both directions. UDP datagrams arriving or due for
//     release during a partition are dropped. TCP connections are not reset:
//     existing ones stall (bytes already read are held, no more are read) and
//     new ones are accepted but hang before the target is dialled; all resume
//     when the partition heals. So a partition is seen as a stall, as on a real
//     WAN, never as a clean reset. (A real TCP stack would give up after its
//     retransmission timeout, ~15 minutes; a relay holds forever.)
//   - The TCP handshake costs one RTT (the sum of both directions' delays,
//     without jitter): the client's connect completes at the relay's kernel at
//     once, but nothing on the connection is taken as sent before one RTT
//     after the accept, so a request on a new connection takes two RTTs, as on
//     a WAN. (A server that speaks first is heard one a→b delay early; git,
//     HTTP and the refdb protocols all have the client speak first. A target
//     that refuses the connection is seen at once, as a closed connection.)
//
// A UDP relay keeps one upstream socket per client source address, so the
// target sees one peer per client and replies route back to the right client
// (QUIC connections are identified by addresses as well as connection IDs). A
// mapping unused for [UDPFlowIdle] is closed.
//
// Relays accept only IPv4 loopback addresses (127.0.0.0/8), for both the
// listening and the target side: an emulator must never forward anywhere else.
//
// # Concurrency
//
// Link methods are safe for concurrent use and take effect for data arriving
// after the call (data in flight keeps the release time it was given). A relay
// is created listening (so its address is known), is served by Run, which
// returns only after every goroutine it started has exited, and is stopped by
// cancelling Run's context or by Close, which is idempotent and returns after
// Run has returned. Stats may be read at any time;
// they count what the relay delivered and dropped, per direction and reason.
//
// A site pair shares one Link: the relay to b's port has its clients at a,
// the relay to a's port sets [Config].Reverse. Both then follow the same a→b
// and b→a profiles, share each direction's bandwidth and are cut together.
//
//	l, _ := link.NewLink(link.Profile{Delay: 50 * time.Millisecond}, link.Profile{Delay: 50 * time.Millisecond})
//	toB, _ := link.ListenUDP(link.Config{Listen: "127.0.0.1:0", Target: bQUIC, Link: l})
//	toA, _ := link.ListenUDP(link.Config{Listen: "127.0.0.1:0", Target: aQUIC, Link: l, Reverse: true})
//	go toB.Run(ctx)
//	go toA.Run(ctx)
//	l.SetPartition(true) // a and b cannot reach each other until SetPartition(false)
//
// # Command line
//
// [ParseSpec] reads the relay specs of `sitesync bench link`, for example
//
//	udp:127.0.0.1:9000->127.0.0.1:7443,delay=50ms,jitter=2ms,loss=0.01,bw=1Gbit
//	tcp:127.0.0.1:9080->127.0.0.1:8080,ab.delay=50ms,ba.delay=80ms,bw=100Mbit
//
// and [Serve] runs a set of them (each on a link of its own) until its context
// ends; [ParseSpecs] parses a command line's arguments.
package link
