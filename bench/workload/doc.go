// Package workload drives a replicated git system the way its users do and
// measures it: the push workload (small pushes at one site), the pack
// workload (one large push) and the notedb workload (the replay of a real
// Gerrit repository's review history through the local write API).
//
// The system under test is a [Target]: something that takes an [Update] at
// its origin site, acknowledges it, and later shows it at each peer site.
// The runners ([Push], [Pack], [NoteDb]) do not know which system they drive;
// the git-protocol baselines (package bench/baseline) and sitesync itself
// are Targets, started from the same [Seed] repositories by a [Factory], so
// every system replays the same updates in the same order over the same
// emulated links.
//
// # Measurement
//
// Updates run closed-loop: an update starts when every peer holds the
// previous one, so each latency is that of one update on idle links, not of a
// queue. For each update the runner records, counted from the moment it
// called Write: the acknowledgement (report.Ack), the moment each peer held
// the new value (report.Visible, one per peer, waited for in parallel) and the
// moment the last one did (report.VisibleAll), each with the physical floor
// the [Topology] allows (see [Topology.AckFloor] and [Topology.VisibleFloor]).
// Building an update's objects in the client repository happens before the
// clock starts.
//
// # Bytes on the wire
//
// Each update's Raw size is what its new objects weigh: the contents of the
// objects `git rev-list --objects New --not Old` names, summed, computed
// while the corpus or the client commit is prepared. If the Target is
// [Metered], the runner reads its [Traffic] before the first update and
// once each update is visible at every peer (outside the timed span), and
// records the difference per peer: report.Wire (both directions) and
// report.WireOut (what the origin sent), each with the update's Raw. The
// updates are sequential, so every byte is counted for exactly one update;
// a byte sent after an update was visible (a late acknowledgement) counts
// for the next one.
//
// # NoteDb replay
//
// [PrepareNoteDb] turns a corpus (a git bundle or bare repository of a
// Gerrit project) into the replay: every commit of every refs/changes/*/meta
// chain, as (ref, old, new) updates in committer-time order (a k-way merge of
// the chains, so a chain's own order is kept even if its clock went
// backwards). A limited replay takes the most recent updates, so the
// repository keeps its real size. Before the replay:
//
//   - every site holds every other ref (branches, tags, patch-set refs
//     refs/changes/*/N) at its final value, and every meta ref at its value
//     before its first replayed update (absent if that update creates it);
//   - the peers hold exactly the objects reachable from those refs;
//   - the origin holds, in addition, every object of the replayed meta
//     commits (unreachable until the replay moves the refs), as Gerrit's
//     NoteDb writer would have just written them: the replay is a local ref
//     update at the origin with the objects in place, which the system must
//     ship to the peers.
//
// So only the review metadata moves; a meta commit's tree names patch-set
// commits only as note file names, never as links, so the peers need no
// patch-set objects they do not already hold.
//
// Concurrency: runners call one Target method at a time, except Visible,
// which they call for every peer at once. A Target must allow that.
package workload
