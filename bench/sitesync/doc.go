// Package sitesync is sitesync itself as a bench Target: one Factory per
// replication mode (sitesync/async, sitesync/quorum, sitesync/sync), each
// starting a fresh multi-process cluster (internal/testkit/cluster: one `sitesync
// serve` per site, one real etcd as the refdb, every inter-site byte through
// bench/link relays with the run's profile) from a workload.Seed, so the
// harness runs sitesync and the git-protocol baselines over the same links
// from the same repositories.
//
// # Seeding
//
// The project is created with PUT /api/v1/projects/{name} at the origin.
// Then every site's repository fetches Seed.Peers from disk (sitesync's
// hooks are configured only for the git processes serve starts, so nothing
// is replicated), and the refdb gets one record per seed ref, written by the
// origin site, through the refdb's etcd store in batches of SeedBatch refs
// (etcd takes at most 128 operations per transaction): the state a
// replicated push of the seed leaves, without its cost — pushing a
// 5,600-ref corpus through the origin costs ~5 s per 100-ref push over 50 ms
// links, about five minutes per cluster. Config.PushSeed pushes the seed
// through the origin instead (git push in batches of SeedBatch refs, then a
// wait until every site lists exactly the seed's refs). When Seed.Origin
// differs (the notedb replay), the objects Seed.Origin holds but none of its
// refs reach (the replayed NoteDb commits) are then packed straight into the
// origin site's object store with `git pack-objects` — no ref, no push, no
// refdb record — as Gerrit's NoteDb writer would have written them just
// before moving the ref. So the peers start with exactly the objects the
// baseline peers start with and the origin with what the baseline origin
// holds.
//
// # Writes and reads
//
// ClientPush is `git push` of New to Ref at the origin's git URL, acked when
// git push returns; LocalWrite is POST /api/v1/projects/{name}/refs at the
// origin, acked on 200. Visible is GET /api/v1/projects/{name}/refs/{ref}
// ?until=SHA at the peer's own URL, directly, not through a relay: the reader
// is a client local to that site. The writer is local to the origin the
// same way.
//
// # Where the refdb is
//
// The cluster's one etcd process sits one link away from every site (each
// site reaches it through a relay of its own with the run's profile): with
// one-way delay D, etcd is a fourth location D from every site, and every
// etcd round trip of any site costs ≥ 2D. A write's decision is a refdb CAS
// (one read transaction, one conditional commit: ≥ 2 round trips, ≥ 4D; one
// round trip, 2D, when the site's refdb client remembers the refs' last
// revisions), so an acknowledgement costs at least
//
//	async:  2D–4D                   (the CAS alone; no votes)
//	quorum: 2D + 2D–4D              (a vote from the W-th site, then the CAS)
//	sync:   2D + 2D–4D              (every vote, in parallel, then the CAS)
//
// and a peer sees the value ≥ D after the decision. The workload's floors
// (workload.Topology) count only the site-to-site links (0, 2D, 2D and D), so
// the ratio-to-floor column includes the refdb's share; Config.RefdbAtOrigin
// puts etcd beside the origin instead (the origin's path to it unimpaired,
// the peers' D), which removes the 4D from the acknowledgement — the
// optimistic case of a refdb whose leader is in the writer's region.
//
// # Bytes on the wire
//
// A Target is workload.Metered: its Traffic is what the origin's transport
// counted towards its peers (sitesync_transport_sent_bytes_total and
// sitesync_transport_received_bytes_total{peer} at the origin's /metrics:
// frames and stream bodies, without QUIC and UDP overhead), plus the TCP
// payload of the HTTP relays between the origin and its peers (nothing
// crosses them in normal operation). The refdb's traffic is not counted.
//
// # Concurrency
//
// A Target allows the runners' use: one Write at a time, Visible for every
// peer at once. Close is idempotent and waits for the cluster to stop.
package sitesync
