package harness

import (
	"bytes"
	"context"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/bench/baseline"
	"github.com/sitesync/sitesync/bench/report"
	"github.com/sitesync/sitesync/bench/workload"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// TestQuick runs every workload in quick mode against the baselines, with a
// generated repository and a synthetic NoteDb corpus, over the default
// links, so the harness cannot rot, and checks what it writes.
func TestQuick(t *testing.T) {
	env := gittest.Env(t)
	g := &workload.Git{Env: env.Vars()}
	seed := gittest.Generate(t, env, gittest.Shape{Commits: 20, Branches: 3, Tags: 2})
	out := t.TempDir()
	start := time.Now()
	rep, err := Run(context.Background(), Options{Quick: true, Seed: seed, Dir: t.TempDir(), Out: out, Git: g})
	require.NoError(t, err)
	took := time.Since(start)
	t.Logf("quick run took %v", took)
	require.Less(t, took, time.Minute, "--quick must run every workload in under a minute")
	require.NoError(t, rep.Check())

	// Every update of every workload has an ack, one visible per peer, a
	// visible-at-all and its bytes on the wire (both directions, out), for
	// both baselines.
	perUpdate := 1 + 2 + 1 + 2
	count := map[string]int{}
	for _, s := range rep.Samples {
		count[s.Workload+" "+s.Target]++
		if s.Metric.IsWire() {
			// A git replication of anything costs at least a ref
			// advertisement and a pack header.
			require.Greater(t, s.Wire, int64(100), "%+v", s)
			require.Positive(t, s.Raw, "%+v", s)
			require.Zero(t, s.Latency)
		}
		if s.Workload == Pack && s.Metric.IsWire() {
			// Incompressible content crosses the link whole.
			require.GreaterOrEqual(t, s.Wire, s.Raw, "%+v", s)
			require.GreaterOrEqual(t, s.Raw, int64(QuickPackSize), "%+v", s)
		}
		if s.Metric == report.Visible || s.Metric == report.VisibleAll {
			require.GreaterOrEqual(t, s.Latency, s.Floor, "%+v is faster than light", s)
			require.Positive(t, s.Floor)
		}
		if s.Workload == Pack {
			require.EqualValues(t, QuickPackSize, s.Bytes)
		}
	}
	for _, tg := range []string{baseline.PushName, baseline.FetchName} {
		require.Equal(t, QuickPushes*perUpdate, count[Push+" "+tg], tg)
		require.Equal(t, QuickPacks*perUpdate, count[Pack+" "+tg], tg)
		require.Equal(t, QuickNoteDbUpdates*perUpdate, count[NoteDb+" "+tg], tg)
	}

	// The files: JSON round-trips, the summary is ordered, plots decode.
	f, err := os.Open(filepath.Join(out, report.JSONFile))
	require.NoError(t, err)
	defer f.Close()
	back, err := report.ReadJSON(f)
	require.NoError(t, err)
	require.Len(t, back.Samples, len(rep.Samples))
	require.Equal(t, []string{"a", "b", "c"}, back.Meta.Link.Sites)
	require.Equal(t, 50*time.Millisecond, back.Meta.Link.Delay)
	require.NotEmpty(t, back.Meta.Machine.Git)

	sums := report.Summarize(back.Samples, back.Meta.Baseline)
	require.NotEmpty(t, sums)
	for _, s := range sums {
		require.LessOrEqual(t, s.P50, s.P90, "%+v", s)
		require.LessOrEqual(t, s.P90, s.P99, "%+v", s)
		require.LessOrEqual(t, s.P99, s.Max, "%+v", s)
		if s.Target == baseline.PushName {
			require.InDelta(t, 1.0, s.RatioBaseline, 1e-9)
		}
		if s.Workload == Pack && s.Metric != report.Ack && !s.Metric.IsWire() {
			require.Positive(t, s.Throughput)
		}
		if s.Metric.IsWire() {
			require.LessOrEqual(t, s.WireP50, s.WireP90, "%+v", s)
			require.Positive(t, s.RawP50, "%+v", s)
			require.Positive(t, s.WireRawP50, "%+v", s)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, report.MarkdownFile))
	require.NoError(t, err)
	require.Contains(t, string(md), "| notedb | git-fetch | visible_all |")
	require.Contains(t, string(md), "## Bytes on the wire per update")
	require.Contains(t, string(md), "| notedb | git-push | both |")
	require.Contains(t, string(md), "wire, git-push: TCP payload")
	t.Logf("summary:\n%s", md)
	for _, w := range Workloads {
		for _, kind := range []string{"cdf", "lag"} {
			b, err := os.ReadFile(filepath.Join(out, w+"-"+kind+".png"))
			require.NoError(t, err)
			img, err := png.Decode(bytes.NewReader(b))
			require.NoError(t, err)
			require.Greater(t, img.Bounds().Dx(), 100)
		}
	}
}

func TestOptions(t *testing.T) {
	_, err := Run(context.Background(), Options{Workloads: []string{"nope"}})
	require.ErrorIs(t, err, ErrUnknownWorkload)
}

var (
	corpus  = flag.String("corpus", "", "git bundle of a Gerrit repository for TestCorpus (opt-in)")
	updates = flag.Int("updates", 30, "TestCorpus: meta updates to replay")
	outDir  = flag.String("out", "", "TestCorpus: where to write the report (default: a temporary directory)")
)

// TestCorpus replays the review history of a real corpus against the
// baselines over the default links. It is opt-in: pass -corpus PATH.
//
//	go test ./bench/harness -run TestCorpus -v -timeout 30m -corpus ../shared/corpus/plugins_high-availability.bundle
func TestCorpus(t *testing.T) {
	if *corpus == "" {
		t.Skip("no -corpus given")
	}
	path, err := filepath.Abs(*corpus)
	require.NoError(t, err)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("corpus %s absent: %v", path, err)
	}
	out := *outDir
	if out == "" {
		out = t.TempDir()
	}
	rep, err := Run(context.Background(), Options{
		Workloads: []string{NoteDb}, Corpus: path, NoteDbUpdates: *updates,
		Dir: t.TempDir(), Out: out, Git: &workload.Git{Env: gittest.Env(t).Vars()},
	})
	require.NoError(t, err)
	require.NoError(t, rep.Check())
	md, err := os.ReadFile(filepath.Join(out, report.MarkdownFile))
	require.NoError(t, err)
	t.Logf("report in %s\n%s", out, md)
}
