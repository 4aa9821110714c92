package coord_test

import (
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sitesync/sitesync/internal/gittest"
	"github.com/sitesync/sitesync/internal/site"
	"github.com/sitesync/sitesync/internal/site/sitetest"
)

// benchCluster is three sites on loopback, quorum of 2, embedded refdb,
// with a project whose repository at a holds the objects of changes.
func benchCluster(b *testing.B, project string, changes [][]metaWrite) *site.Local {
	b.Helper()
	l := cluster(b, site.LocalOptions{Sites: 3, Mode: "quorum", Acks: 2, Log: slog.New(slog.DiscardHandler)})
	e := gittest.Env(b)
	sitetest.CreateProject(b, l.Sites[0].URL(), project)
	loadObjects(b, e, repoDir(l, l.Sites[0], project), allObjects(changes))
	return l
}

// wire is what site a sent its peers, and the raw object bytes of writes.
type wire struct{ sent float64 }

func sentBytes(b *testing.B, l *site.Local) wire {
	return wire{sent: metric(b, l.Sites[0].URL(), "sitesync_transport_sent_bytes_total", "")}
}

func rawOf(changes [][]metaWrite) (raw []int) {
	for _, ws := range changes {
		for _, w := range ws {
			raw = append(raw, w.rawBytes())
		}
	}
	return raw
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)]
}

func median(v []int) int {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkNoteDbThroughput: sustained NoteDb meta updates through the
// write API of site a with many concurrent writers (each owning a few
// changes, writing their updates in order). Reports updates/s, latency
// percentiles and bytes on the wire per update against raw object bytes.
func BenchmarkNoteDbThroughput(b *testing.B) {
	for _, writers := range []int{1, 64, 256} {
		b.Run("writers="+strconv.Itoa(writers), func(b *testing.B) {
			perChange := max(1, (b.N+writers*2-1)/(writers*2))
			changes := metaChanges(writers*2, perChange, 10000, 3)
			const project = "bench/throughput"
			l := benchCluster(b, project, changes)
			a := l.Sites[0].Coord()
			before := sentBytes(b, l)
			lat := make([][]time.Duration, writers)
			ctx := b.Context()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for g := range writers {
				wg.Go(func() {
					for _, c := range []int{2 * g, 2*g + 1} {
						for _, w := range changes[c] {
							t0 := time.Now()
							if _, err := a.Write(ctx, project, w.updates()); err != nil {
								b.Errorf("write %s: %v", w.Ref, err)
								return
							}
							lat[g] = append(lat[g], time.Since(t0))
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			n := writers * 2 * perChange
			report(b, l, changes, before, slices.Concat(lat...), n, elapsed)
		})
	}
}

// BenchmarkNoteDbLatency: acknowledged latency at fixed offered rates
// (open loop: each update starts at its scheduled time and its latency
// counts from then, so a saturated cluster shows as growing latency),
// spread over 200 changes.
func BenchmarkNoteDbLatency(b *testing.B) {
	for _, rate := range []int{250, 500, 1000} {
		b.Run("rate="+strconv.Itoa(rate), func(b *testing.B) {
			const nChanges = 200
			perChange := max(1, (b.N+nChanges-1)/nChanges)
			changes := metaChanges(nChanges, perChange, 20000, 4)
			const project = "bench/latency"
			l := benchCluster(b, project, changes)
			a := l.Sites[0].Coord()
			before := sentBytes(b, l)
			n := nChanges * perChange
			// turn[c][k] is closed when update k of change c may start: the
			// updates of a change go in order even when a saturated cluster
			// has several of them waiting.
			turn := make([][]chan struct{}, nChanges)
			for c := range turn {
				turn[c] = make([]chan struct{}, perChange+1)
				for k := range turn[c] {
					turn[c][k] = make(chan struct{})
				}
				close(turn[c][0])
			}
			lat := make([]time.Duration, n)
			ctx := b.Context()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for j := range n {
				at := start.Add(time.Duration(j) * time.Second / time.Duration(rate))
				time.Sleep(time.Until(at))
				c, k := j%nChanges, j/nChanges
				wg.Go(func() {
					<-turn[c][k]
					defer close(turn[c][k+1])
					w := changes[c][k]
					if _, err := a.Write(ctx, project, w.updates()); err != nil {
						b.Errorf("write %s: %v", w.Ref, err)
						return
					}
					lat[j] = time.Since(at)
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			report(b, l, changes, before, lat, n, elapsed)
		})
	}
}

func report(b *testing.B, l *site.Local, changes [][]metaWrite, before wire, lat []time.Duration, n int, elapsed time.Duration) {
	b.Helper()
	url := l.Sites[0].URL()
	after := sentBytes(b, l)
	raw := rawOf(changes)
	var rawSum int
	for _, r := range raw {
		rawSum += r
	}
	peers := float64(len(l.Sites) - 1)
	wirePer := (after.sent - before.sent) / float64(n) / peers
	batchW := metric(b, url, "sitesync_notedb_batch_writes_sum", "")
	batches := metric(b, url, "sitesync_notedb_batch_writes_count", "")
	frame := metric(b, url, "sitesync_notedb_delta_frame_bytes_sum", "")
	frameRaw := metric(b, url, "sitesync_notedb_delta_raw_bytes_sum", "")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "updates/s")
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(wirePer, "wire-B/update/peer")
	b.ReportMetric(wirePer/(float64(rawSum)/float64(len(raw))), "wire/raw")
	b.ReportMetric(float64(median(raw)), "raw-B/update(median)")
	b.ReportMetric(batchW/batches, "writes/batch")
	b.ReportMetric(frame/frameRaw, "frame/raw")
	b.ReportMetric(0, "ns/op") // wall time per op means little here
}
