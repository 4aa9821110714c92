package transport

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics holds the transport's collectors. All methods are nil-safe so a
// Mesh built with a nil Registerer costs nothing.
type metrics struct {
	framesRejected *prometheus.CounterVec // {reason}
	refusedTotal   *prometheus.CounterVec // {check}
	reconnects     *prometheus.CounterVec // {peer}
}

var (
	descRTT  = prometheus.NewDesc("sitesync_transport_rtt_seconds", "Smoothed QUIC round-trip time to the peer (absent while disconnected).", []string{"peer"}, nil)
	descSent = prometheus.NewDesc("sitesync_transport_sent_bytes_total", "Bytes sent to the peer: frames and bulk stream bodies, without QUIC overhead.", []string{"peer"}, nil)
	descRecv = prometheus.NewDesc("sitesync_transport_received_bytes_total", "Bytes received from the peer: frames and bulk stream bodies, without QUIC overhead.", []string{"peer"}, nil)
	descUp   = prometheus.NewDesc("sitesync_transport_peer_up", "1 while a connection to the peer is established.", []string{"peer"}, nil)
)

func newMetrics(reg prometheus.Registerer, m *Mesh) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	mt := &metrics{
		framesRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitesync_transport_frames_rejected_total",
			Help: "Frames from peers that were rejected, by reason (too_large, bad_type, bad_flags, zstd, truncated, malformed, unexpected).",
		}, []string{"reason"}),
		refusedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitesync_transport_connections_refused_total",
			Help: "Connections refused before they became a peer, by failed check (alpn, cert, ca, peer_name, hello, version).",
		}, []string{"check"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitesync_transport_reconnects_total",
			Help: "Connections established to a peer after the first one.",
		}, []string{"peer"}),
	}
	for _, c := range []prometheus.Collector{mt.framesRejected, mt.refusedTotal, mt.reconnects, peerCollector{m}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return mt, nil
}

func (mt *metrics) rejected(reason string) {
	if mt != nil {
		mt.framesRejected.WithLabelValues(reason).Inc()
	}
}

func (mt *metrics) refused(check string) {
	if mt != nil {
		mt.refusedTotal.WithLabelValues(check).Inc()
	}
}

func (mt *metrics) reconnected(peer string) {
	if mt != nil {
		mt.reconnects.WithLabelValues(peer).Inc()
	}
}

// peerCollector reads the per-peer figures at scrape time, so nothing on the
// data path touches a metric.
type peerCollector struct{ m *Mesh }

func (c peerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRTT
	ch <- descSent
	ch <- descRecv
	ch <- descUp
}

func (c peerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.m.Peers() {
		up := 0.0
		if s.Connected {
			up = 1
			ch <- prometheus.MustNewConstMetric(descRTT, prometheus.GaugeValue, s.RTT.Seconds(), s.Name)
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, s.Name)
		ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(s.BytesOut), s.Name)
		ch <- prometheus.MustNewConstMetric(descRecv, prometheus.CounterValue, float64(s.BytesIn), s.Name)
	}
}
