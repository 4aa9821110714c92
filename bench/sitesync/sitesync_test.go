package sitesync_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/bench/baseline"
	"github.com/sitesync/sitesync/bench/harness"
	"github.com/sitesync/sitesync/bench/link"
	"github.com/sitesync/sitesync/bench/report"
	"github.com/sitesync/sitesync/bench/sitesync"
	"github.com/sitesync/sitesync/bench/workload"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// TestQuick runs every workload in quick mode against every sitesync mode
// and git-push over short emulated links, so the target and its wiring into
// the harness cannot rot, and checks that each update was acknowledged, seen
// at every peer no sooner than the links allow, and that its bytes on the
// wire were counted: for a NoteDb update, fewer than git-push's (sitesync
// ships the new objects without git's ref advertisement and negotiation).
func TestQuick(t *testing.T) {
	env := gittest.Env(t)
	g := &workload.Git{Env: env.Vars()}
	seed := gittest.Generate(t, env, gittest.Shape{Commits: 10, Branches: 2, Tags: 1})
	topo := workload.Topology{Sites: []string{"a", "b", "c"}, Profile: link.Profile{Delay: 5 * time.Millisecond, Bandwidth: 1e9 / 8}}
	out := t.TempDir()
	var started []*sitesync.Target
	start := time.Now()
	rep, err := harness.Run(context.Background(), harness.Options{
		Quick: true, Seed: seed, Topology: topo, Dir: t.TempDir(), Out: out, Git: g,
		Pushes: 3, NoteDbUpdates: 6,
		// git-push only, to compare bytes on the wire; the baselines have
		// tests of their own.
		Factories: baseline.Factories(baseline.Config{Topology: topo, Git: g, Dir: t.TempDir()})[:1],
		More: func(e harness.Env) []workload.Factory {
			var fs []workload.Factory
			for _, f := range sitesync.Factories(sitesync.Config{Topology: e.Topology, Git: e.Git, Dir: e.Dir, Log: e.Log}) {
				start := f.Start
				f.Start = func(ctx context.Context, s workload.Seed) (workload.Target, error) {
					tg, err := start(ctx, s)
					if err == nil {
						started = append(started, tg.(*sitesync.Target))
					}
					return tg, err
				}
				fs = append(fs, f)
			}
			return fs
		},
		Baseline: sitesync.Name(sitesync.Async),
	})
	require.NoError(t, err)
	t.Logf("quick run took %v", time.Since(start))
	require.NoError(t, rep.Check())
	require.Len(t, started, 3*len(harness.Workloads))

	count := map[string]int{}
	wire := map[string][]int64{} // target → wire_out of each notedb update
	for _, s := range rep.Samples {
		count[s.Workload+" "+s.Target]++
		if s.Metric.IsWire() {
			require.Positive(t, s.Wire, "%+v", s)
			require.Positive(t, s.Raw, "%+v", s)
		}
		if s.Workload == harness.NoteDb && s.Metric == report.WireOut {
			wire[s.Target] = append(wire[s.Target], s.Wire)
		}
		if s.Metric == report.Visible {
			require.GreaterOrEqual(t, s.Latency, s.Floor, "%+v is faster than light", s)
		}
		if s.Metric == report.Ack && (s.Target == sitesync.Name(sitesync.Quorum) || s.Target == sitesync.Name(sitesync.Sync)) {
			require.GreaterOrEqual(t, s.Latency, 2*topo.Profile.Delay, "%+v: a vote needs a round trip", s)
		}
	}
	perUpdate := 1 + 2 + 1 + 2
	for _, n := range []string{sitesync.Name(sitesync.Async), sitesync.Name(sitesync.Quorum), sitesync.Name(sitesync.Sync), baseline.PushName} {
		require.Equal(t, 3*perUpdate, count[harness.Push+" "+n], n)
		require.Equal(t, harness.QuickPacks*perUpdate, count[harness.Pack+" "+n], n)
		require.Equal(t, 6*perUpdate, count[harness.NoteDb+" "+n], n)
	}
	// The origin sends fewer bytes per NoteDb update than git-push: the
	// medians, and each update.
	git := wire[baseline.PushName]
	for _, m := range sitesync.Modes {
		n := sitesync.Name(m)
		require.Len(t, wire[n], len(git), n)
		for i, b := range wire[n] {
			require.Less(t, b, git[i], "%s: notedb update %d: %d bytes out per peer, git-push %d", n, i, b, git[i])
		}
	}
	for _, s := range report.Summarize(rep.Samples, rep.Meta.Baseline) {
		if s.Workload == harness.NoteDb && s.Metric.IsWire() {
			t.Logf("notedb %s %s: p50 %d B per peer, raw %d B, ×%.2f", s.Target, s.Metric, s.WireP50, s.RawP50, s.WireRawP50)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, report.MarkdownFile))
	require.NoError(t, err)
	require.Contains(t, string(md), "| notedb | sitesync/sync | visible_all |")
	t.Logf("summary:\n%s", md)
}

// TestSeed checks the notedb seed: the peers hold exactly the objects the
// seed refs reach, the origin also the replayed ones, and a replayed update
// reaches every peer.
func TestSeed(t *testing.T) {
	env := gittest.Env(t)
	g := &workload.Git{Env: env.Vars()}
	ctx := context.Background()
	dir := t.TempDir()
	corpus, err := workload.SyntheticCorpus(ctx, g, dir, 3, 3)
	require.NoError(t, err)
	r, err := workload.PrepareNoteDb(ctx, g, corpus, filepath.Join(dir, "prep"), "bench/project", 4)
	require.NoError(t, err)
	for _, tt := range []struct {
		name string
		push bool
	}{{name: "direct"}, {name: "push", push: true}} {
		t.Run(tt.name, func(t *testing.T) { testSeed(t, g, r, tt.push) })
	}
}

func testSeed(t *testing.T, g *workload.Git, r *workload.Replay, push bool) {
	ctx := context.Background()
	topo := workload.Topology{Sites: []string{"a", "b", "c"}, Profile: link.Profile{Delay: 2 * time.Millisecond}}
	tg, err := sitesync.Start(ctx, sitesync.Config{Topology: topo, Git: g, Dir: t.TempDir(), PushSeed: push}, sitesync.Quorum, r.Seed)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tg.Close()) })
	require.Equal(t, 2, tg.AckSites())

	objects := func(repo string) int {
		out, err := g.Run(ctx, repo, nil, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
		require.NoError(t, err)
		return strings.Count(out, "\n")
	}
	require.Equal(t, objects(r.Seed.Origin), objects(tg.Repo("a")), "origin")
	for _, peer := range tg.Sites() {
		require.Equal(t, objects(r.Seed.Peers), objects(tg.Repo(peer)), "peer %s", peer)
	}
	for _, u := range r.Updates[:2] {
		_, err = tg.Write(ctx, u)
		require.NoError(t, err, tg.LogTails(30))
		for _, peer := range tg.Sites() {
			_, err := tg.Visible(ctx, peer, u.Ref, u.New)
			require.NoError(t, err, tg.LogTails(30))
		}
	}
}
