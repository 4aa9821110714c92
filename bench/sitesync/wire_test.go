package sitesync

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"
)

// scrape reads the per-peer transport counters from a real Prometheus
// handler, as a site serves them: it sums the peers asked about and
// insists on a series for each.
func TestScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{Name: sentMetric}, []string{"peer"})
	received := prometheus.NewCounterVec(prometheus.CounterOpts{Name: receivedMetric}, []string{"peer"})
	other := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sitesync_other_bytes_total"}, []string{"peer"})
	reg.MustRegister(sent, received, other)
	sent.WithLabelValues("b").Add(1234)
	sent.WithLabelValues("c").Add(1.5e6)
	sent.WithLabelValues("d").Add(99) // a peer not asked about
	received.WithLabelValues("b").Add(10)
	received.WithLabelValues("c").Add(20)
	other.WithLabelValues("b").Add(7)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	tg := &Target{http: &http.Client{}}
	ctx := context.Background()

	s, r, err := tg.scrape(ctx, srv.URL, []string{"b", "c"})
	require.NoError(t, err)
	require.Equal(t, []int64{1234 + 1_500_000, 30}, []int64{s, r})

	_, _, err = tg.scrape(ctx, srv.URL, []string{"b", "e"})
	require.ErrorContains(t, err, "1 "+sentMetric+" series for 2 peers")

	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(bad.Close)
	_, _, err = tg.scrape(ctx, bad.URL, []string{"b"})
	require.ErrorContains(t, err, "503")
}
