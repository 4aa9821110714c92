// Package etcdtest runs a real etcd server process for tests and benchmarks:
// free loopback ports, a temporary data dir, killed at the end. The binary
// comes from Debian's etcd-server package (or $SITESYNC_ETCD); tests fail, not
// skip, when it is missing, because CI installs it.
//
// Start(tb) is for tests: it fails tb on error and kills the process in
// tb.Cleanup. StartProcess(ctx, dir) is for code without a testing.TB (the
// bench harness, the cluster launcher): the caller must Close the Server.
//
// The process gets SIGKILL when the goroutine's OS thread that started it
// dies (Pdeathsig, Linux), so an etcd never outlives a crashed test binary.
//
// A Server is safe for concurrent use: Kill, TryRestart and Close may be called
// from any goroutine.
package etcdtest
