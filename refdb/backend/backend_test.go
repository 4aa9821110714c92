package backend_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/testkit/etcdtest"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/backend"
	"github.com/sitesync/sitesync/refdb/refdbtest"
)

func TestOpenEachBackend(t *testing.T) {
	srv := etcdtest.Start(t)
	for _, tc := range []struct {
		name string
		cfg  refdb.Config
		// checked: whether a wrong Old is rejected
		checked bool
	}{
		{"etcd", refdb.Config{Backend: "etcd", Endpoints: []string{srv.Endpoint}, Prefix: "/open"}, true},
		{"embedded", refdb.Config{Backend: "embedded", Endpoints: []string{t.Name()}}, true},
		{"none", refdb.Config{Backend: "none"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			reg := prometheus.NewPedanticRegistry()
			s, err := backend.Open(ctx, tc.cfg, nil, reg)
			require.NoError(t, err)
			defer s.Close()
			up := refdb.Update{Ref: "refs/heads/main", Old: refmove.ZeroID, New: refdbtest.SHA(1)}
			_, err = s.CAS(ctx, "p", refdbtest.Batch(up))
			require.NoError(t, err)
			_, err = s.CAS(ctx, "p", refdbtest.Batch(up))
			if tc.checked {
				require.ErrorIs(t, err, refdb.ErrConflict)
				assert.Equal(t, 1.0, metricSum(t, reg, "sitesync_refdb_conflicts_total"))
			} else {
				require.NoError(t, err)
			}
			_, err = s.CAS(ctx, "p", refdbtest.Batch(refdb.Update{Ref: "bad", Old: refmove.ZeroID, New: refdbtest.SHA(1)}))
			require.ErrorIs(t, err, refdb.ErrInvalid)
			// ok + conflict (+ invalid) observations, labelled by backend.
			assert.Equal(t, 3.0, metricSum(t, reg, "sitesync_refdb_cas_duration_seconds"))
		})
	}
}

func TestEmbeddedInstancesShareByName(t *testing.T) {
	ctx := context.Background()
	open := func(name string) refdb.Store {
		s, err := backend.Open(ctx, refdb.Config{Backend: "embedded", Endpoints: []string{name}}, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		return s
	}
	a, b, other := open(t.Name()), open(t.Name()), open(t.Name()+"-other")
	defer other.Close()
	_, err := a.CAS(ctx, "p", refdbtest.Batch(refdb.Update{Ref: "refs/heads/x", Old: refmove.ZeroID, New: refdbtest.SHA(1)}))
	require.NoError(t, err)
	require.NoError(t, a.Close())
	got, err := b.Get(ctx, "p", "refs/heads/x")
	require.NoError(t, err, "closing one handle keeps the instance for the others")
	assert.Equal(t, refdbtest.SHA(1), got[0].Value)
	got, err = other.Get(ctx, "p", "refs/heads/x")
	require.NoError(t, err)
	assert.False(t, got[0].Exists(), "another name is another database")
	require.NoError(t, b.Close())
	c := open(t.Name())
	defer c.Close()
	got, err = c.Get(ctx, "p", "refs/heads/x")
	require.NoError(t, err)
	assert.False(t, got[0].Exists(), "the last Close drops the instance")
}

func TestSharedRegistry(t *testing.T) {
	// The sites of a demo share one registry: opening several stores on it
	// must not panic on duplicate registration.
	reg := prometheus.NewRegistry()
	for i := range 3 {
		s, err := backend.Open(context.Background(), refdb.Config{Backend: "embedded", Endpoints: []string{fmt.Sprint(t.Name(), i)}}, nil, reg)
		require.NoError(t, err)
		defer s.Close()
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     refdb.Config
		wantErr string
	}{
		{"etcd ok", refdb.Config{Backend: "etcd", Endpoints: []string{"127.0.0.1:2379"}}, ""},
		{"tikv needs endpoints", refdb.Config{Backend: "tikv"}, "refdb.endpoints"},
		{"etcd needs endpoints", refdb.Config{Backend: "etcd"}, "refdb.endpoints"},
		{"embedded default name", refdb.Config{Backend: "embedded"}, ""},
		{"none", refdb.Config{Backend: "none"}, ""},
		{"missing backend", refdb.Config{}, "refdb.backend: required"},
		{"unknown backend", refdb.Config{Backend: "zookeeper"}, `unknown backend "zookeeper"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Defaults().Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
			_, err = backend.Open(context.Background(), tc.cfg, nil, nil)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
	d := refdb.Config{Backend: "etcd"}.Defaults()
	assert.Equal(t, "/sitesync", d.Prefix)
	assert.Equal(t, refdb.DefaultDialTimeout, d.DialTimeout)
}

// TestTiKVUnreachable: with no PD at the endpoint, Open returns an error
// within the dial timeout instead of hanging.
func TestTiKVUnreachable(t *testing.T) {
	start := time.Now()
	_, err := backend.Open(context.Background(), refdb.Config{Backend: "tikv", Endpoints: []string{"127.0.0.1:1"}, DialTimeout: time.Second}, nil, nil)
	require.ErrorIs(t, err, refdb.ErrUnavailable)
	assert.Less(t, time.Since(start), 10*time.Second)
}

// metricSum sums a family's counter values or histogram sample counts.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				sum += float64(h.GetSampleCount())
			}
		}
	}
	return sum
}
