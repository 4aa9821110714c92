// Package testkit holds what sitesync's tests and benchmarks need and its
// product code never does: multi-process clusters of `sitesync serve` with
// a real etcd and emulated links (cluster, etcdtest), git fixtures
// (gittest), in-process clusters for fast tests (sitetest), a locked
// buffer for logs (syncbuf), the end-to-end tests of the external contract
// (e2e) and the seeded fault campaign (campaign). Only the bench command
// (bench/sitesync) imports one of them, cluster, to run the clusters it
// measures. This package itself is documentation only.
package testkit
