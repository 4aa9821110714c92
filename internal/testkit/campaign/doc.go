// Package campaign is sitesync's seeded fault campaign: it runs real
// clusters (three `sitesync serve` processes, one etcd, emulated links
// between all of them; internal/testkit/cluster) through schedules of client writes
// and faults drawn from a seed, and checks that the invariants of
// DESIGN.md §4 held throughout.
//
// # What a schedule is
//
// Generate(seed, shape) is a Plan, pure and deterministic: the replication
// mode (quorum 2 of 3, async or sync), a link delay, a list of operations
// and a list of faults.
//
//   - Operations are what users do, with the C git client over HTTP and
//     with the local write API: pushes of new commits, force pushes,
//     deletions and creations of branches, two sites pushing the same
//     branch at the same moment, and POST /api/v1/projects/{name}/refs
//     moving a branch to a value that site already holds.
//   - Faults are what machines do: SIGKILL of a site's serve (restarted
//     later), SIGSTOP/SIGCONT of a site, a site cut off from its peers and
//     etcd, etcd SIGKILLed (restarted on its data) or SIGSTOPped, and a site
//     restarted with the crash point SITESYNC_FAULT=after-refdb-commit, sent
//     a push, and restarted without it after it dies. A fault begins a
//     seeded moment after the client begins the operation it names (so it
//     lands inside requests too), lasts its duration and is always
//     healed; at most two are active at once, one per target. The long
//     shape also has long outages (12-25 s), past the coordinator's refdb
//     timeout, where an origin cannot learn whether its write was decided.
//
// Run(ctx, plan, cfg) carries a plan out on a fresh cluster and returns a
// Report: writes acknowledged, refused and failed, faults injected,
// violations found.
//
// # What it proves
//
// While the schedule runs, an observer reads every site's refs from its
// repository on disk (so a paused or dead site is seen too) and keeps
// every change. When the operations are done and every fault is healed, Run
// waits up to ConvergeBound for every site to hold exactly the refdb's
// values with empty journals (/api/v1/status queues) and /readyz 200 (and
// at the end, for every serve to exit cleanly on SIGTERM), runs
// git fsck --strict at every site, reads every ref's whole history back
// from etcd (each key's earlier revisions; etcd is never compacted during
// a run) and checks (Check, pure):
//
//  1. every acknowledged write (git said ok, the API said 200) is in the
//     refdb's history, decided while its request ran, and an API answer
//     names as many holding sites as the ack rule needs; no write the
//     client was told was refused (a conflict, the quorum not reached) is
//     in it (a refusal that leaves the outcome open, such as "refdb
//     unavailable", counts as failed and is not judged);
//  2. each ref's versions grow by one per write, and a write's old value,
//     where the client knows it, is the value before it;
//  3. no site exposes a value the refdb never held, nor one before the
//     refdb decided it;
//  4. no site moves a ref backwards in version order;
//  5. every value a site exposes names an object it holds.
//
// A violation names its kind (the invariant), the site, the ref, and the
// history that shows it. A schedule that fails is replayed by its seed:
// every bug found becomes a named scenario test (scenarios_test.go), run by
// the suite until and after it is fixed. The campaign can fail: a test
// writes a branch behind sitesync's back (Config.Tamper) and requires the
// run to report it; the checker's table tests fabricate each violation.
//
// # Running it
//
//	go test ./internal/testkit/campaign/                  # the short campaign of the suite
//	go test ./internal/testkit/campaign/ -run Campaign -campaign.schedules 60 -campaign.seed 1 -timeout 3h -v
//
// The long form prints a table (seed, mode, writes, faults, convergence,
// result) and a summary line. -campaign.keep DIR keeps each failing
// schedule's cluster directory (serve logs, repositories) for a
// post-mortem; -campaign.verbose logs every operation and fault as it
// happens (a failing schedule's log is shown in any case);
// -campaign.mode and -campaign.shape override what the seed and the flags
// choose. A failing schedule is replayed alone with
// -run 'Campaign/seed=N$' and the same flags.
//
// # Concurrency
//
// Run is safe to call from several goroutines (each run has its own
// cluster, ports and directories), though one at a time is what a 2-core
// machine can time fairly. Inside a run, the client's operations are
// sequential (a race push is two concurrent pushes), faults run on
// goroutines of their own and the observer on another; every goroutine a
// run starts has ended when Run returns, and the cluster is closed. Plan,
// Check and Converged are pure and safe for concurrent use.
package campaign
