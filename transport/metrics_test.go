package transport

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMetrics: the per-peer and rejection metrics appear in the injected
// registry with the documented names.
func TestMetrics(t *testing.T) {
	dir := certDir(t, "a", "b")
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	reg := prometheus.NewPedanticRegistry()
	m, err := New(siteConfig(t, dir, "a", aAddr, []Peer{{Name: "b", Addr: bAddr}}), nil, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	b := newSite(t, siteConfig(t, dir, "b", bAddr, []Peer{{Name: "a", Addr: aAddr}}), nil)
	b.m.Handle(kindEcho, func(ctx context.Context, from string, p []byte) ([]byte, error) { return p, nil })
	require.Eventually(t, func() bool { return connected(m, "b") }, 10*time.Second, 10*time.Millisecond)
	_, err = m.Request(ctx, "b", kindEcho, []byte("x"))
	require.NoError(t, err)
	require.Error(t, rawDial(t, aAddr, dir, "b", "h3")) // one refusal
	require.Error(t, rawDial(t, aAddr, dir, "", ALPN))  // and one without a certificate

	names := map[string]bool{}
	var refusedALPN, refusedCert float64
	require.Eventually(t, func() bool { // the server refuses after the client finished
		mfs, err := reg.Gather()
		if err != nil {
			return false
		}
		for _, mf := range mfs {
			names[mf.GetName()] = true
			if mf.GetName() == "sitesync_transport_connections_refused_total" {
				for _, mt := range mf.GetMetric() {
					switch mt.GetLabel()[0].GetValue() {
					case checkALPN:
						refusedALPN = mt.GetCounter().GetValue()
					case checkCert:
						refusedCert = mt.GetCounter().GetValue()
					}
				}
			}
		}
		return refusedCert > 0
	}, 10*time.Second, 10*time.Millisecond, "a connection without a certificate is not counted")
	assert.Equal(t, 1.0, refusedCert)
	for _, n := range []string{
		"sitesync_transport_rtt_seconds",
		"sitesync_transport_sent_bytes_total",
		"sitesync_transport_received_bytes_total",
		"sitesync_transport_peer_up",
		"sitesync_transport_connections_refused_total",
	} {
		assert.True(t, names[n], "metric %s missing", n)
	}
	assert.Equal(t, 1.0, refusedALPN)

	// A second Mesh on the same registry is refused, not silently merged.
	_, err = New(siteConfig(t, dir, "a", freeAddr(t), []Peer{{Name: "b", Addr: bAddr}}), nil, reg)
	assert.Error(t, err)
}
