// Package e2e holds sitesync's end-to-end tests: the must-show scenarios of
// issue #5, driven only through the external contract (DESIGN.md §7) against
// a multi-process cluster (internal/testkit/cluster: one `sitesync serve` per site,
// one real etcd) with the stock C git client.
//
// What the tests prove:
//
//   - TestPushReplicates: pushes at one site (a generated repository, then
//     incremental pushes with a branch deletion and new tags) reach every
//     site with identical refs and a repository `git fsck --strict` accepts,
//     in async, quorum (2 of 3) and sync modes.
//   - TestQuorumSiteDown: with one site SIGKILLed, quorum pushes succeed;
//     after a live switch to sync mode a push is refused with the quorum
//     message within the replication timeout and leaves nothing behind (no
//     ref moved, no quarantine left); the killed site restarts and catches
//     up to every acknowledged write.
//   - TestOriginCrashAfterRefDBCommit: an origin killed right after its refdb
//     commit (SITESYNC_FAULT=after-refdb-commit) leaves its client with a
//     failure, the peers that voted commit the write on their own, the
//     origin catches up on restart and the ref stays writable. It crashes
//     the origin three times: a crash sometimes kills git receive-pack while
//     it holds the ref's lock, as a power loss does, and the restarted site
//     must cope with the stale lock file.
//   - TestConcurrentPushes: two clients racing to move one branch at two
//     sites: each round exactly one wins, the other is told the branch was
//     updated at another site, and every site ends with the winner's value.
//   - TestTee: a push slowed by a rate-limited client link is streamed to
//     the peers while it uploads, so replication ends within 1.2× of the
//     client's own upload time; it reports the daemons' peak RSS. The pack
//     size is the -tee-size flag (MiB).
//   - The stuck-write tests of issue #14 (stuck_test.go), each of which
//     failed on the code before the fix: TestKilledPushLeavesNoLock (a push
//     whose client is SIGKILLed while its quorum waits leaves no ref lock,
//     and the site takes later writes), TestRefuseUnappliableWrites (API
//     writes no site could apply get 400 and leave nothing in the refdb),
//     TestPeerCommitIsOnlyAHint (a COMMIT over the mesh for a version the
//     refdb never held moves nothing), TestAbortsDoNotWaitForPacks (a
//     peer's journal drains promptly when its aborts' packs never come),
//     TestGCAutoAfterPush (git gc --auto after pushes completes and packs
//     the refs), TestNonAtomicPushReportsWhatItDid (a non-atomic push is
//     reported ok when the refdb took it, while catch-ups run at the origin)
//     and TestSupersededPrepareCommits (a prepared write superseded in the
//     refdb is committed, not left in the journal).
//   - TestImport: `sitesync import` (the real command) makes a repository
//     that exists at one site a replicated project: the refdb is seeded in
//     several etcd transactions, the other sites copy it, every site takes
//     pushes; different repositories of one name at two sites are refused,
//     naming both, and neither copy nor the refdb changes.
//   - BenchmarkPushAck: push-to-acknowledged latency of a one-commit push in
//     each mode, and without replication.
//
// The tests are slow by unit-test standards (a cluster starts in seconds)
// and sequential: each starts its own cluster, which the cluster package
// stops when the test ends. They poll with deadlines sized for a loaded
// 2-core machine and never sleep-then-assert.
package e2e
