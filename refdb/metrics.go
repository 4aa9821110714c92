package refdb

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a CAS, the "result" label of the metrics.
const (
	resultOK       = "ok"
	resultConflict = "conflict"
	resultInvalid  = "invalid"
	resultError    = "error"
)

type metrics struct {
	casSeconds *prometheus.HistogramVec // backend, result
	conflicts  *prometheus.CounterVec   // backend
	errors     *prometheus.CounterVec   // backend, op
}

// register registers c with reg, reusing a collector already registered
// under the same name (several stores may share one registry, as the sites
// of `sitesync demo` do).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a different collector with our name: a programming error
	}
	return c
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		casSeconds: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sitesync_refdb_cas_duration_seconds",
			Help: "Latency of refdb compare-and-set batches, by backend and result (ok, conflict, invalid, error).",
			// 0.5 ms (in-process) to ~10 s (a cross-region TiKV commit under faults).
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"backend", "result"})),
		conflicts: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitesync_refdb_conflicts_total",
			Help: "Compare-and-set batches rejected because a ref had moved.",
		}, []string{"backend"})),
		errors: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitesync_refdb_errors_total",
			Help: "refdb calls that failed with an error other than a conflict or invalid input, by operation.",
		}, []string{"backend", "op"})),
	}
}

// Instrument wraps s so that every call is measured in reg (nil: metrics are
// kept but not exported). backend is the label value, e.g. "tikv".
func Instrument(s Store, backend string, reg prometheus.Registerer) Store {
	return &instrumented{Store: s, backend: backend, m: newMetrics(reg), now: time.Now}
}

type instrumented struct {
	Store
	backend string
	m       *metrics
	now     func() time.Time
}

func (s *instrumented) count(op string, err error) {
	if err != nil && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrInvalid) {
		s.m.errors.WithLabelValues(s.backend, op).Inc()
	}
}

func (s *instrumented) CAS(ctx context.Context, project string, b Batch) ([]Record, error) {
	start := s.now()
	recs, err := s.Store.CAS(ctx, project, b)
	result := resultOK
	switch {
	case err == nil:
	case errors.Is(err, ErrConflict):
		result = resultConflict
		s.m.conflicts.WithLabelValues(s.backend).Inc()
	case errors.Is(err, ErrInvalid):
		result = resultInvalid
	default:
		result = resultError
	}
	s.m.casSeconds.WithLabelValues(s.backend, result).Observe(s.now().Sub(start).Seconds())
	s.count("cas", err)
	return recs, err
}

func (s *instrumented) Get(ctx context.Context, project string, refs ...string) ([]Record, error) {
	recs, err := s.Store.Get(ctx, project, refs...)
	s.count("get", err)
	return recs, err
}

func (s *instrumented) List(ctx context.Context, project string) ([]Record, error) {
	recs, err := s.Store.List(ctx, project)
	s.count("list", err)
	return recs, err
}

func (s *instrumented) RemoveProject(ctx context.Context, project string) error {
	err := s.Store.RemoveProject(ctx, project)
	s.count("remove_project", err)
	return err
}

// Unwrap returns the instrumented store (for tests and fault injection).
func (s *instrumented) Unwrap() Store { return s.Store }
