package sitesync

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/sitesync/sitesync/bench/workload"
)

// Transport metrics the origin exposes per peer: frames and bulk stream
// bodies, without QUIC overhead.
const (
	sentMetric     = "sitesync_transport_sent_bytes_total"
	receivedMetric = "sitesync_transport_received_bytes_total"
)

// Traffic is what the origin's transport sent to and received from its
// peers (the per-peer counters at its /metrics), plus the TCP payload of
// the inter-site HTTP relays between the origin and its peers (zero unless
// something crosses them). Traffic with etcd is not counted: the
// baselines have no refdb.
func (t *Target) Traffic(ctx context.Context) (workload.Traffic, error) {
	origin := t.origin()
	peers := t.Sites()
	sent, received, err := t.scrape(ctx, origin.URL+"/metrics", peers)
	if err != nil {
		return workload.Traffic{}, err
	}
	tr := workload.Traffic{Out: sent, In: received}
	for _, p := range peers {
		// Relay stats are oriented client → target: origin→p's AtoB is
		// what the origin sent, p→origin's AtoB what it received.
		to, from := t.c.RelayStats(origin.Name, p).HTTP, t.c.RelayStats(p, origin.Name).HTTP
		tr.Out += int64(to.AtoB.Bytes + from.BtoA.Bytes)
		tr.In += int64(to.BtoA.Bytes + from.AtoB.Bytes)
	}
	return tr, nil
}

// WireNote says what Traffic counts.
func (t *Target) WireNote() string {
	return "wire, " + t.Name() + ": the origin's " + sentMetric + " and " + receivedMetric +
		" towards its peers (frames and stream bodies, no QUIC/UDP overhead) plus any HTTP between the origin and its peers"
}

// scrape sums the sent and received counters of peers at a /metrics URL.
func (t *Target) scrape(ctx context.Context, url string, peers []string) (sent, received int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("metrics: %s", resp.Status)
	}
	want := make(map[string]bool, len(peers))
	for _, p := range peers {
		want[p] = true
	}
	found := make(map[string]int)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, peer, v, ok := parseSample(sc.Text())
		if !ok || !want[peer] {
			continue
		}
		switch name {
		case sentMetric:
			sent += v
		case receivedMetric:
			received += v
		default:
			continue
		}
		found[name]++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("metrics: %w", err)
	}
	if found[sentMetric] != len(peers) || found[receivedMetric] != len(peers) {
		return 0, 0, fmt.Errorf("metrics: %d %s and %d %s series for %d peers", found[sentMetric], sentMetric,
			found[receivedMetric], receivedMetric, len(peers))
	}
	return sent, received, nil
}

// parseSample parses one line of the Prometheus text format with a peer
// label: `name{peer="b"} 1234`.
func parseSample(line string) (name, peer string, v int64, ok bool) {
	if strings.HasPrefix(line, "#") {
		return "", "", 0, false
	}
	key, val, ok := strings.Cut(line, " ")
	if !ok {
		return "", "", 0, false
	}
	name, labels, ok := strings.Cut(key, "{")
	if !ok {
		return "", "", 0, false
	}
	for l := range strings.SplitSeq(strings.TrimSuffix(labels, "}"), ",") {
		if k, q, ok := strings.Cut(l, "="); ok && k == "peer" {
			peer, _ = strconv.Unquote(q)
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
	if err != nil || peer == "" {
		return "", "", 0, false
	}
	return name, peer, int64(f), true
}
