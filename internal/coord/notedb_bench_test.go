package coord_test

import (
	"bytes"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sitesync/sitesync/internal/site"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
	"github.com/sitesync/sitesync/internal/testkit/sitetest"
)

// filesystems the benchmarks run on: the default temporary directory (a
// disk), and tmpfs, where creating a file and fsync cost next to nothing —
// side by side they show how much of a figure is the disk's.
var filesystems = []struct{ name, dir string }{{"disk", ""}, {"tmpfs", "/dev/shm"}}

// benchDir is where a benchmark's cluster lives on filesystem parent ("":
// the default temporary directory).
func benchDir(b *testing.B, parent string) string {
	b.Helper()
	if parent == "" {
		return b.TempDir()
	}
	if st, err := os.Stat(parent); err != nil || !st.IsDir() {
		b.Skipf("%s is not available on this machine", parent)
	}
	dir, err := os.MkdirTemp(parent, "sitesync-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// benchCluster is three sites on loopback, quorum of 2, embedded refdb, in
// dir, with a project whose repository at a holds the objects of changes.
func benchCluster(b *testing.B, dir, project string, changes [][]metaWrite) *site.Local {
	b.Helper()
	l := cluster(b, site.LocalOptions{Sites: 3, Dir: dir, Mode: "quorum", Acks: 2, Log: slog.New(slog.DiscardHandler)})
	e := gittest.Env(b)
	sitetest.CreateProject(b, l.Sites[0].URL(), project)
	loadObjects(b, e, repoDir(l, l.Sites[0], project), allObjects(changes))
	return l
}

// wire is what site a sent its peers, and the CPU time used so far.
type wire struct {
	sent float64
	cpu  time.Duration
}

func sentBytes(b *testing.B, l *site.Local) wire {
	return wire{sent: metric(b, l.Sites[0].URL(), "sitesync_transport_sent_bytes_total", ""), cpu: cpuTime(b)}
}

// cpuTime is the CPU time (user and system) of this process and of its
// children, the long-lived git processes of every site included: the
// figure a busy, shared machine does not distort the way it does
// throughput.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var self, gone syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		b.Fatal(err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &gone); err != nil {
		b.Fatal(err)
	}
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	total := tv(self.Utime) + tv(self.Stime) + tv(gone.Utime) + tv(gone.Stime)
	// Children still running: their /proc stat, in clock ticks (USER_HZ,
	// 100 on Linux).
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := strconv.Itoa(os.Getpid())
	for _, p := range stats {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15): comm may hold spaces.
		i := bytes.LastIndexByte(raw, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(raw[i+1:]))
		if len(f) < 13 || f[1] != me {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * (time.Second / 100)
	}
	return total
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
	for _, fs := range filesystems {
		for _, writers := range []int{1, 64, 256} {
			b.Run("fs="+fs.name+"/writers="+strconv.Itoa(writers), func(b *testing.B) { benchThroughput(b, fs.dir, writers) })
		}
	}
}

// throughputChanges is about how many changes a throughput run spreads its
// updates over, whatever the writers: a change's meta history stays as
// short as a real one (the corpus has tens of updates per change, not
// thousands, whose growing notes trees would make every update larger).
const throughputChanges = 400

func benchThroughput(b *testing.B, dir string, writers int) {
	perWriter := max(2, throughputChanges/writers) // changes each writer owns
	perChange := max(1, (b.N+writers*perWriter-1)/(writers*perWriter))
	changes := metaChanges(writers*perWriter, perChange, 10000, 3)
	const project = "bench/throughput"
	l := benchCluster(b, benchDir(b, dir), project, changes)
	a := l.Sites[0].Coord()
	before := sentBytes(b, l)
	lat := make([][]time.Duration, writers)
	ctx := b.Context()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for c := g * perWriter; c < (g+1)*perWriter; c++ {
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
	n := writers * perWriter * perChange
	report(b, l, changes, before, slices.Concat(lat...), n, elapsed)
}

// BenchmarkNoteDbLatency: acknowledged latency at fixed offered rates
// (open loop: each update starts at its scheduled time and its latency
// counts from then, so a saturated cluster shows as growing latency),
// spread over 200 changes.
func BenchmarkNoteDbLatency(b *testing.B) {
	for _, fs := range filesystems {
		for _, rate := range []int{250, 500, 1000} {
			b.Run("fs="+fs.name+"/rate="+strconv.Itoa(rate), func(b *testing.B) { benchLatency(b, fs.dir, rate) })
		}
	}
}

func benchLatency(b *testing.B, dir string, rate int) {
	const nChanges = 200
	perChange := max(1, (b.N+nChanges-1)/nChanges)
	changes := metaChanges(nChanges, perChange, 20000, 4)
	const project = "bench/latency"
	l := benchCluster(b, benchDir(b, dir), project, changes)
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
	b.ReportMetric(float64((after.cpu-before.cpu).Microseconds())/float64(n), "cpu-µs/update")
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(wirePer, "wire-B/update/peer")
	b.ReportMetric(wirePer/(float64(rawSum)/float64(len(raw))), "wire/raw")
	b.ReportMetric(float64(median(raw)), "raw-B/update(median)")
	b.ReportMetric(batchW/batches, "writes/batch")
	b.ReportMetric(frame/frameRaw, "frame/raw")
	b.ReportMetric(0, "ns/op") // wall time per op means little here
}
