// Package cluster launches a whole sitesync deployment on one machine as real
// processes: one `sitesync serve` per site, one real etcd (Debian's
// etcd-server, via internal/testkit/etcdtest) and, optionally, bench/link relays so
// that every byte between sites, and between each site and etcd, crosses an
// emulated WAN. Replication tests use it for SIGKILL/restart and partition
// scenarios; the bench harness uses it to run the same clusters.
//
// # Use
//
// In a test:
//
//	c := cluster.Start(t, cluster.Options{Sites: 3, Mode: "quorum", Acks: 2,
//		Link: &link.Profile{Delay: 20 * time.Millisecond}})
//	a, b := c.Site("a"), c.Site("b")
//	env := gittest.Env(t)
//	repo := gittest.Generate(t, env, gittest.Shape{Commits: 3})
//	env.Run(t, repo, "push", a.GitURL("demo"), "main") // clients talk to a site directly
//	require.NoError(t, b.Kill())                        // SIGKILL, like a crash
//	require.NoError(t, b.Start())                       // same dirs, ports, config; waits for /healthz
//	c.Partition("c", true)                              // c loses every peer and the refdb
//	c.Partition("c", false)
//	require.NoError(t, a.EditConfig(func(cfg map[string]any) {
//		cfg["replication"].(map[string]any)["mode"] = "sync" // serve reloads it live
//	}))
//
// Start fails the test on error and stops everything in t.Cleanup; if the
// test failed it first logs the last 60 lines of each site's log. Without a
// testing.TB (the bench command):
//
//	c, err := cluster.New(ctx, cluster.Options{Sites: 3, Log: os.Stderr})
//	if err != nil { … }
//	defer c.Close()
//
// # Layout
//
// Options.Dir (a temporary directory by default) holds certs/ (a CA and one
// certificate per site, transport.GenerateCerts), etcd/ (etcd's data) and one
// directory per site: site.yaml (its config), serve.log (stdout and stderr
// of every run of its serve, appended; each run starts with a line beginning
// with StartMarker), repos/ and state/. Ports are free loopback ports picked
// at New (TCP for http.listen, UDP for mesh.listen) and kept across restarts.
// The binary is Options.Binary, or ./cmd/sitesync of the enclosing module
// built once per process (not with -race).
//
// # Config tree
//
// A site's config is a map[string]any, the YAML file's tree, written by
// the launcher (Options.Config may change it before it is first written;
// Site.EditConfig later):
//
//	site:        {name, repos, state}                       absolute paths
//	http:        {listen, url}                              the site's own port
//	mesh:        {listen, ca, cert, key, peers: []any{map[string]any{name, addr, url}}}
//	refdb:       {backend: "etcd", endpoints: []any{addr}, prefix: "/sitesync"} or {backend: "none"}
//	replication: {mode, acks (if Options.Acks), timeout (if Options.Timeout)}
//
// Maps are map[string]any and lists []any; scalars may be strings, numbers,
// bools or time.Duration (written as "1.5s").
//
// # Emulated WAN (Options.Link)
//
// Each site pair {x, y} has one link.Link (Cluster.Link(x, y)) whose two
// directions both start with the Options.Link profile. On it run four
// relays: x's config names y's mesh address as a UDP relay forwarding to y's
// mesh port and y's URL as a TCP relay forwarding to y's http port; y's
// config names x's the same way, through relays on the same Link (so the
// pair shares bandwidth and a partition, like one physical path). Each site
// also has a Link of its own to etcd (Cluster.Link(x, EtcdName)) carrying a
// TCP relay that its refdb.endpoints names.
//
// Delay is one way and paid once per crossing: data x→y waits Delay (plus
// serialization at Bandwidth, jitter, loss for UDP) in the relay. A reply
// returns through the same relay (a UDP relay keeps one upstream socket per
// client, so y sees the relay as its peer and answers to it; a TCP relay is
// one connection each side) and pays the y→x Delay. So with Delay D:
//   - a QUIC datagram exchange between two sites takes ≥ 2D (one RTT);
//   - an HTTP request on a kept-alive connection to a peer URL takes ≥ 2D,
//     on a new connection ≥ 4D (the relay charges one RTT for the TCP
//     handshake);
//   - every etcd round trip of a site takes ≥ 2D: etcd sits D away from
//     every site. Make it local to a site with
//     c.SetProfile(site, cluster.EtcdName, link.Profile{}) and the reverse.
//
// RelayStats(from, to) counts the bytes and drops of the relays of one path
// (the bench's inter-site traffic figures).
//
// Requests of the test itself to Site.URL and to Etcd() are direct, as a
// client talks to its nearby site. Side a of a pair's Link is the site whose
// name sorts first (of a site's etcd Link, the site); SetProfile(from, to, p)
// picks the direction. Partition(site, on) cuts both directions of every link
// of site, including its etcd link; a pair stays cut while either side is
// partitioned. As bench/link documents, a cut drops UDP and stalls TCP (no
// reset): a peer's QUIC connection times out, HTTP and etcd requests hang
// until their own timeouts or the heal.
//
// # Processes
//
// Each serve runs in a process group of its own with Pdeathsig SIGKILL
// (Linux), so none outlives a crashed test binary. Site.Kill is SIGKILL of
// the group (serve and any git child); Site.Stop is SIGTERM, then SIGKILL
// after 30 s; Close stops every site (SIGKILL after 10 s), then the relays,
// then etcd. Start, Stop and Kill of one site are serialized; every method
// is safe for concurrent use.
//
// A serve inherits the test process's environment plus Options.Env(site);
// Site.SetEnv replaces the extra variables for the next Start, so a test can
// start a site with a crash point (SITESYNC_FAULT=after-refdb-commit) and
// restart it without.
package cluster
