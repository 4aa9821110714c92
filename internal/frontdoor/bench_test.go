package frontdoor

import (
	"flag"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

var corpus = flag.String("corpus", "../../../shared/corpus/plugins_high-availability.bundle",
	"git bundle of a real repository for the clone benchmark")

// BenchmarkCloneCorpus clones the corpus repository (~82k objects) through
// the front door and through git http-backend (hosted by net/http/cgi), one
// after the other in each iteration so both see the same machine load. It
// reports seconds per clone of each, their ratio, and the peak Go heap of the
// process while the front door serves, which must stay flat whatever the pack
// size because packs stream through.
func BenchmarkCloneCorpus(b *testing.B) {
	if _, err := os.Stat(*corpus); err != nil {
		b.Skipf("corpus bundle not found at %s (pass -corpus PATH): %v", *corpus, err)
	}
	env := gittest.Env(b)
	rootDir := b.TempDir()
	env.Run(b, "", "clone", "--quiet", "--mirror", *corpus, filepath.Join(rootDir, "ha.git"))

	root, err := git.NewRoot(rootDir)
	require.NoError(b, err)
	repos := git.NewRepos(root)
	b.Cleanup(func() { repos.Close() })
	front := httptest.NewServer(New(Config{Site: "a", Repos: repos}))
	b.Cleanup(front.Close)

	execPath := strings.TrimSpace(env.Run(b, "", "--exec-path"))
	backend := httptest.NewServer(&cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + rootDir, "GIT_HTTP_EXPORT_ALL=1"},
	})
	b.Cleanup(backend.Close)

	clone := func(url string) time.Duration {
		dst := filepath.Join(b.TempDir(), "clone.git")
		start := time.Now()
		env.Run(b, "", "clone", "--quiet", "--mirror", url+"/ha.git", dst)
		d := time.Since(start)
		require.NoError(b, os.RemoveAll(dst))
		return d
	}
	clone(front.URL) // warm the page cache for both

	var frontTotal, backendTotal time.Duration
	var peak uint64
	for b.Loop() {
		stop := watchHeap(&peak)
		frontTotal += clone(front.URL)
		stop()
		backendTotal += clone(backend.URL)
	}
	n := float64(b.N)
	b.ReportMetric(frontTotal.Seconds()/n, "frontdoor-s/clone")
	b.ReportMetric(backendTotal.Seconds()/n, "http-backend-s/clone")
	b.ReportMetric(frontTotal.Seconds()/backendTotal.Seconds(), "ratio")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// watchHeap samples the live Go heap every few milliseconds into peak until
// the returned function is called.
func watchHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			*peak = max(*peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
