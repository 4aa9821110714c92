package sitesync

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

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
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, 0, fmt.Errorf("metrics: %w", err)
	}
	want := make(map[string]bool, len(peers))
	for _, p := range peers {
		want[p] = true
	}
	// sum adds a per-peer counter over peers, which must each have one.
	sum := func(name string) (int64, error) {
		var total int64
		n := 0
		for _, m := range families[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "peer" && want[l.GetValue()] {
					total += int64(m.GetCounter().GetValue())
					n++
				}
			}
		}
		if n != len(peers) {
			return 0, fmt.Errorf("metrics: %d %s series for %d peers", n, name, len(peers))
		}
		return total, nil
	}
	if sent, err = sum(sentMetric); err != nil {
		return 0, 0, err
	}
	if received, err = sum(receivedMetric); err != nil {
		return 0, 0, err
	}
	return sent, received, nil
}
