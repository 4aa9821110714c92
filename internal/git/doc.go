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
// Concurrency: Root and Repos are safe for concurrent use. A Repo serialises
// the use of each of its long-lived processes; a failed or cancelled call kills
// the process, and the next call starts a fresh one.
package git
