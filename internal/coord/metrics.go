package coord

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	writes        *prometheus.CounterVec
	decideLatency *prometheus.HistogramVec
	applyLatency  prometheus.Histogram
	refsApplied   prometheus.Counter
	fetches       prometheus.Counter
	refused       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitesync_coord_writes_total", Help: "Writes decided at this site as origin, by outcome.",
		}, []string{"outcome"}),
		decideLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sitesync_coord_decide_seconds", Help: "Time from a write's start to its refdb decision, by mode.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, []string{"mode"}),
		applyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sitesync_coord_apply_seconds", Help: "Time a peer takes to apply a decided write.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}),
		refsApplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitesync_coord_refs_applied_total", Help: "Refs moved here to refdb values written elsewhere.",
		}),
		fetches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitesync_coord_fetches_total", Help: "Packs fetched from peers to fill missing objects.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitesync_coord_versions_refused_total", Help: "Versions a peer announced that the refdb does not hold (ignored).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.writes, m.decideLatency, m.applyLatency, m.refsApplied, m.fetches, m.refused} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
