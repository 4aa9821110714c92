// Package hook connects git's hooks to the local sitesync daemon.
//
// Git runs `sitesync hook pre-receive` and `sitesync hook
// reference-transaction <phase>` in the repository; Run reads git's input,
// sends it as one Request over the daemon's unix socket, and turns the
// Response into the hook's exit status and the lines the git user sees
// ("remote: ..."). The daemon side is Server: it accepts connections and asks
// its Handler for each decision.
//
// Wire format: one JSON Request and one JSON Response per connection, each
// a single line of at most MaxMessage bytes. The socket lives in the site's
// state directory with mode 0600: only the daemon's own user (git's user)
// can talk to it.
//
// A hook that cannot reach the daemon fails the "prepared" phase and
// pre-receive, so no guarded ref moves without a decision; for the phases
// whose exit status git ignores ("committed", "aborted") it only reports.
//
// Some calls are answered without the daemon (by the installed script in
// shell where it can, so that sitesync does not even start): writes the
// daemon applies itself (SITESYNC_APPLYING), the phases after the decision,
// and git pack-refs's bookkeeping (run by gc and gc --auto), which moves no
// ref value: the hook recognises that git pack-refs ran it from /proc (see
// packrefs.go).
//
// A hook waiting on the daemon ends when the git that ran it dies (the
// kernel sends it SIGTERM, PR_SET_PDEATHSIG), so a stopped or killed git
// leaves no hook behind and the daemon's Handler sees its ctx end.
//
// Server is safe for concurrent use; Run returns after every connection
// handler has returned.
package hook
