// Package coord is the replication coordinator: the life of a write from
// the site that takes it (the origin) to every placement site of its
// project — validate, prepare at the peers, collect votes under the
// project's ack rule, compare-and-swap every ref of the write in the refdb
// (the decision), commit locally, tell the peers — and the peers' side:
// prepare, vote, apply what the refdb decided, resolve what an origin left
// undecided, catch up with the refdb.
//
// # The rules and the shell
//
// What a site does at each step is decided by pure functions of what the
// refdb, the journals and the repository say, with the time passed in; they
// take no lock, start no goroutine and do no I/O, and are table-tested
// (rules_test.go, tally_test.go):
//
//   - Tally: whether an ack rule holds, cannot hold, or is still open.
//   - validateWrite: a write reaches the refdb only if every site could
//     apply it (invariant 9).
//   - resolveRule: a prepared write at a peer is committed when the refdb
//     names it or moved past it, aborted after its deadline, else waits
//     (invariant 5).
//   - confirm: a peer's COMMIT is a hint; only what the refdb holds is
//     applied (invariant 9).
//   - behindRefdb and forward: catch-up compares values with the refdb's;
//     refs only move forward in refdb version order (invariants 3, 6).
//   - backoff, and parking: failures are retried with backoff and reported
//     (Parked, /readyz) when they last (invariant 10).
//   - seedPlan, compareRefs and reseed: an import seeds the refdb only
//     with refs it holds no value of, and is refused when the refdb or a
//     placement site holds another copy (importrules.go).
//
// The rest is the shell that reads the inputs, calls the rules and carries
// out what they say: origin.go and push.go (a write at its origin), peer.go
// (a peer's side), apply.go and catchup.go (moving refs to the refdb's
// values), notedb.go (the NoteDb fast path, which batches writes but
// follows the same rules), import.go (making a repository that exists at
// a site a replicated project). Every ref the coordinator moves goes through
// moveRefs (moved.go), which reports it to Config.OnMoved: the one seam
// where refs move at a site.
//
// # Concurrency
//
// A Coordinator is safe for concurrent use. Who owns each goroutine:
//
//   - Run's caller runs the event loop (peer events, the tick). The loop
//     blocks on nothing but its channels: resolving prepared writes runs as
//     one background pass at a time, deliveries in the background.
//   - Background work (catchUpLoop, a resolve pass, a delivery and its
//     per-peer sends, a pack shipment, an abort, a NoteDb release, the end
//     of a NoteDb batch's votes, the catch-up of refs a write lost to
//     another site's) starts through background and is owned by
//     Run, which returns only after all of it has ended; none starts after
//     Run returned.
//   - A request's goroutines end before the request returns: decide's votes
//     are cancelled and waited for once the rule holds or cannot hold;
//     CreateProject, DeleteProject and Import wait for their peers.
//   - A push's git receive-pack belongs to the front door's request; the
//     coordinator may only end it early, through the cancel of
//     Push.Context (an outcome the refdb did not confirm).
//   - The NoteDb batchers (notedbfast.Batcher) are owned by the coordinator
//     and stopped by Run's end (noteDB.close).
//
// Locks, in the order they may be taken (never the other way):
//
//	project.ndCommit → project.apply → project.mu
//
// project.ndCommit keeps a project's NoteDb batches committing in decision
// order; project.apply serialises every ref move of a project here (so
// refs move forward only) and is held across git I/O; project.mu guards the
// project's bookkeeping and is never held across I/O. Leaf locks, taken
// with nothing else held or as the last of the chain, never across I/O:
// Coordinator.mu (the project and push tables, Run's context), write.mu,
// noteDB.mu and noteDB.inMu, parking.mu, retries.mu, imports.mu. Config.OnMoved is
// called with project.apply held and must not call back into the
// coordinator or block.
package coord
