// Package git is the one place in sitesync that runs C git.
//
// Everything heavy is done by the git binary (2.39 or later) that every site
// already has: receive-pack and upload-pack for clients, index-pack to take in
// a pack, pack-objects to make one, and update-ref transactions, so that C
// git's lock-file protocol is respected by every writer of a repository.
// Per repository, a Repo keeps one long-lived `cat-file --batch-command` and
// one long-lived `update-ref --stdin` process and reuses them, instead of one
// exec per object or per ref. RefUpdater.Apply writes the common ref
// transaction (creates and updates of loose refs with no reflog and no hook
// to run) itself, through the same lock files as git, and hands any other to
// update-ref whole (reffast.go).
//
// Repository names are resolved only through Root, which refuses any name that
// could leave the repository root: "..", absolute paths, control characters,
// backslashes, and names that escape through symbolic links.
//
// Stopping git: a git process sitesync stops — its request's context ended,
// or a long-lived process failed — gets SIGTERM (and SIGCONT, in case it was
// stopped), on which git removes its lock and temporary files and exits, and
// SIGKILL only if it is still there after stopGrace (3 s). The call that
// stopped it returns by then. SIGKILL, ours or another's (the OOM killer),
// leaves git's locks behind: for update-ref, the RefUpdater then removes those
// of the transaction the process held (see removeLocks); for any other git
// (receive-pack, a one-shot update-ref) they stay until RemoveStaleLocks at
// the next start. Only git itself is signalled, not the hooks it runs: git
// processes stay in the daemon's process group, which internal/testkit/cluster
// signals as a whole to crash or freeze a site; sitesync's own hook ends
// when its git dies (internal/hook). The Go ref writer takes no lock once
// its context has ended and removes every lock it took when it gives up or
// fails.
//
// Concurrency: Root and Repos are safe for concurrent use. A Repo serialises
// the use of each of its long-lived processes; a failed or cancelled call
// stops the process, and the next call starts a fresh one. A Prepared
// transaction holds its updater until Commit or Abort; one whose context has
// ended is rolled back (the process stopped) rather than left holding its
// locks.
package git
