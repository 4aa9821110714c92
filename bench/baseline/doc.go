// Package baseline is the git-protocol replication sitesync is measured
// against: what Gerrit's replication plugin and the pull-replication plugin
// do between sites, run over the same emulated links as sitesync.
//
// Each site is a plain C git server (git http-backend under net/http/cgi) on
// loopback holding the project's bare repository. The origin's server is
// reached directly (its clients are local); every other site is reached only
// through bench/link TCP relays on one emulated link per origin–peer pair, so
// each git connection pays the configured delay and bandwidth. Two Targets:
//
//   - "git-push" (replication plugin): after the write at the origin, the
//     origin runs `git push <peer> +NEW:REF` to every peer in parallel. The
//     update is visible at a peer when that push returns (the peer then holds
//     it).
//   - "git-fetch" (pull-replication plugin): after the write at the origin,
//     every peer is notified (modelled as one one-way delay: the plugin's
//     REST call to the peer on a kept-alive connection) and runs
//     `git fetch <origin> +REF:REF`. Visible when that fetch returns.
//
// Both acknowledge the writer as soon as the origin holds the update, as the
// plugins do (their "synchronous" mode only delays the acknowledgement by a
// best-effort timeout). A write is a client's git push to the origin server
// (workload.ClientPush) or `git update-ref` in the origin's repository
// (workload.LocalWrite, what Gerrit's NoteDb writer does).
//
// The servers keep every received pack as a pack (receive.unpackLimit=1, as
// JGit does) and treat blobs over 512 KiB as big files (stored, never
// delta-compressed), so re-sending a pack to the next site reuses its bytes
// instead of recompressing them. Automatic gc is off so unreachable objects
// (the NoteDb replay's, see bench/workload) stay until the replay reaches them.
//
// A Target is workload.Metered: its Traffic is the TCP payload the relays
// between the origin and its peers delivered, in both directions — the
// whole replication (HTTP, the ref advertisement, the negotiation, the
// pack), since nothing else crosses them.
//
// Concurrency: a Target's Write runs the replication of each update in
// goroutines that outlive it; Visible may be called from many goroutines at
// once; Close cancels and waits for every goroutine, relay and server the
// Target started.
package baseline
