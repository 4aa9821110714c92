// Package config loads, checks and publishes sitesync's configuration: the YAML
// file of DESIGN.md §7. It is the only package that imports viper; the rest of
// the daemon reads the typed *Config it produces.
//
// # Loading
//
// Load reads a file with a fresh viper instance (never viper's global), decodes
// it over Default() into the typed structs below, and validates it. Every
// problem is reported at once, each naming its key path and what is wrong:
//
//	config site.yaml has 2 problems:
//	  mesh.peers[1].name: duplicate "b"
//	  replication.acks: 4 exceeds the 3 sites that hold project "x"
//
// Unknown keys are errors (a typo must not silently fall back to a default).
// Durations are Go durations with a unit ("10s"); byte sizes are integers with
// an optional unit ("16MiB", "64KiB", "1048576"). Relative paths (site.repos,
// site.state, mesh.ca, mesh.cert, mesh.key) are resolved against the directory
// of the configuration file, not the working directory, so a daemon started by
// an init system finds the same files as one started by hand.
//
// # Defaults worth knowing
//
//   - replication: mode quorum, timeout 10s, and acks unset. An unset acks
//     means min(2, placement sites): §7's "2" for a project held by two or more
//     sites, and every site for a project held by one site, so the default file
//     of a one-site or two-site deployment is valid. An acks written in the file
//     is honoured exactly and must not exceed the placement it applies to.
//   - http.url defaults to http://<http.listen> when that names a host.
//   - mesh.cert and mesh.key default to certs/<site>.pem and certs/<site>-key.pem.
//   - refdb: backend etcd at 127.0.0.1:2379, prefix /sitesync, as §7 shows.
//     Backend none is refused when mesh.peers is not empty: without a global
//     ref database nothing stops two sites accepting diverging histories.
//   - refdb.ignore defaults to refs/cache-automerge/** (Gerrit nests automerge
//     refs two levels deep, so the single-segment "*" of §7 would miss them).
//
// # Per-project rules
//
// replication.projects and shard.projects are lists matched with internal/glob
// (first match wins). Rule and Placement resolve a project name against them;
// both are pure functions of the snapshot. Validation proves that no quorum
// (acks) exceeds the sites that hold a project it applies to, for every pair
// of replication rule and shard rule that some project name can actually reach
// (see checkAcks), and names such a project in the error.
//
// # Live reload
//
// Live holds the current snapshot in an atomic.Pointer. Run reloads on changes
// to the file (watching its directory, so rename-into-place is seen) and on
// SIGHUP. A reload loads a fresh copy, validates it, and diffs it against the
// current snapshot: replication, shard and notedb may change live; a change to
// any other key is refused with a log line naming the key. A reload is all or
// nothing: if anything is invalid or refused, nothing of the new file applies
// and the old snapshot stays. Holders of an older snapshot keep it unchanged
// (a transaction keeps the rule it started with).
//
// # Concurrency
//
// A *Config returned by Load, Parse or Live is immutable and safe to share;
// callers must not modify it. Live is safe for concurrent use.
package config
