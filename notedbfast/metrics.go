package notedbfast

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the fast path. A nil *Metrics records nothing.
type Metrics struct {
	writes     *prometheus.CounterVec
	rawBytes   prometheus.Histogram
	frameBytes prometheus.Histogram
	batch      prometheus.Histogram
	batchBytes prometheus.Histogram
	apply      prometheus.Histogram
}

// NewMetrics registers the fast path's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	sizes := prometheus.ExponentialBuckets(256, 2, 12) // 256 B .. 512 KiB
	m := &Metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitesync_notedb_writes_total",
			Help: "Writes classified, by path (delta or pack).",
		}, []string{"path"}),
		rawBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sitesync_notedb_delta_raw_bytes", Help: "Object bytes per delta frame before compression.", Buckets: sizes,
		}),
		frameBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sitesync_notedb_delta_frame_bytes", Help: "Bytes per delta frame after compression.", Buckets: sizes,
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sitesync_notedb_batch_writes", Help: "Writes per group-commit batch.", Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sitesync_notedb_batch_bytes", Help: "Bytes per group-commit batch.", Buckets: sizes,
		}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sitesync_notedb_apply_seconds", Help: "Time to verify and durably write one batch of deltas at a peer.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	reg.MustRegister(m.writes, m.rawBytes, m.frameBytes, m.batch, m.batchBytes, m.apply)
	return m
}

func (m *Metrics) observePath(p Path) {
	if m != nil {
		m.writes.WithLabelValues(p.String()).Inc()
	}
}

func (m *Metrics) observeEncode(raw int64, frame int) {
	if m != nil {
		m.rawBytes.Observe(float64(raw))
		m.frameBytes.Observe(float64(frame))
	}
}

// ObserveBatch records one flushed batch; pass it as BatcherConfig.Observe.
func (m *Metrics) ObserveBatch(writes int, bytes int64) {
	if m != nil {
		m.batch.Observe(float64(writes))
		m.batchBytes.Observe(float64(bytes))
	}
}

func (m *Metrics) observeApply(d time.Duration) {
	if m != nil {
		m.apply.Observe(d.Seconds())
	}
}
