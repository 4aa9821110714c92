// Command sitesync is the one binary of sitesync: it runs a site (serve), a
// whole local cluster (demo), and the tools around them (certs, status,
// hook, shard, bench, version). It parses flags, handles signals and wires
// the parts together; no other package reads flags, the environment or the
// configuration file.
package main
