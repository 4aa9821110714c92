package workload

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

func testGit(tb testing.TB) *Git {
	tb.Helper()
	return &Git{Env: gittest.Env(tb).Vars()}
}

func TestIsMetaRef(t *testing.T) {
	tests := []struct {
		name string
		ref  string
		want bool
	}{
		{name: "meta", ref: "refs/changes/01/1/meta", want: true},
		{name: "patch set", ref: "refs/changes/01/1/1"},
		{name: "robot comments", ref: "refs/changes/01/1/robot-comments"},
		{name: "too deep", ref: "refs/changes/01/1/2/meta"},
		{name: "branch", ref: "refs/heads/meta"},
		{name: "empty shard", ref: "refs/changes//1/meta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, IsMetaRef(tt.ref))
		})
	}
}

func TestTopologyFloors(t *testing.T) {
	topo := DefaultTopology()
	tests := []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{name: "async ack", got: topo.AckFloor(1, 0), want: 0},
		{name: "quorum of 2 ack", got: topo.AckFloor(2, 0), want: 100 * time.Millisecond},
		{name: "sync ack", got: topo.AckFloor(3, 0), want: 100 * time.Millisecond},
		{name: "quorum ack of 125 MB", got: topo.AckFloor(2, 125e6), want: 1100 * time.Millisecond},
		{name: "visible at a peer", got: topo.VisibleFloor("b", 0), want: 50 * time.Millisecond},
		{name: "pack of 125 MB at a peer", got: topo.VisibleFloor("b", 125e6), want: 1100 * time.Millisecond},
		{name: "origin", got: topo.VisibleFloor("a", 0), want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.got)
		})
	}
}

func TestPrepareNoteDb(t *testing.T) {
	const changes, metas = 4, 3
	ctx := context.Background()
	g := testGit(t)
	bundle, err := SyntheticCorpus(ctx, g, t.TempDir(), changes, metas)
	require.NoError(t, err)

	tests := []struct {
		name  string
		limit int
		want  int
	}{
		{name: "all", limit: 0, want: changes * metas},
		{name: "last 5", limit: 5, want: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := PrepareNoteDb(ctx, g, bundle, t.TempDir(), "p", tt.limit)
			require.NoError(t, err)
			require.Equal(t, changes, r.Chains)
			require.Equal(t, changes*metas, r.Commits)
			require.Len(t, r.Updates, tt.want)

			origin := refs(t, g, r.Seed.Origin)
			peers := refs(t, g, r.Seed.Peers)
			require.Equal(t, origin, peers, "every site starts with the same refs")
			require.Contains(t, peers, "refs/changes/01/1/1", "patch-set refs are there from the start")

			// Replaying the updates in order moves each ref from the value
			// it has; committer times never go back.
			cur := origin
			var last string
			for i, u := range r.Updates {
				require.Equal(t, LocalWrite, u.Kind)
				require.True(t, IsMetaRef(u.Ref), u.Ref)
				want := cur[u.Ref]
				if want == "" {
					want = refmove.ZeroID
				}
				require.Equal(t, want, u.Old, "update %d of %s", i, u.Ref)
				cur[u.Ref] = u.New
				ts := strings.TrimSpace(g2(t, g, r.Seed.Origin, "log", "-1", "--format=%ct", u.New))
				require.GreaterOrEqual(t, ts, last, "update %d", i)
				last = ts
				// The origin holds the objects, the peers do not.
				g2(t, g, r.Seed.Origin, "cat-file", "-e", u.New)
				_, err := g.Run(ctx, r.Seed.Peers, nil, "cat-file", "-e", u.New)
				require.Error(t, err, "peer must not hold %s before the replay", u.New)
				// Each synthetic meta commit brings itself, its tree and
				// its one note blob.
				var raw int64
				for _, obj := range []string{u.New, u.New + "^{tree}", u.New + ":ps1"} {
					n, err := strconv.ParseInt(strings.TrimSpace(g2(t, g, r.Seed.Origin, "cat-file", "-s", obj)), 10, 64)
					require.NoError(t, err)
					raw += n
				}
				require.Equal(t, raw, u.Raw, "raw bytes of update %d", i)
			}
			// After the replay every meta ref is at its tip in the corpus.
			for ref, v := range cur {
				if IsMetaRef(ref) {
					require.Equal(t, strings.TrimSpace(g2(t, g, "", "bundle", "list-heads", bundle, ref))[:40], v, ref)
				}
			}
			g2(t, g, r.Seed.Peers, "fsck", "--connectivity-only", "--no-progress")
		})
	}
}

func refs(tb testing.TB, g *Git, dir string) map[string]string {
	tb.Helper()
	out := g2(tb, g, dir, "for-each-ref", "--format=%(objectname) %(refname)")
	m := make(map[string]string)
	for line := range strings.Lines(out) {
		id, ref, _ := strings.Cut(strings.TrimSpace(line), " ")
		m[ref] = id
	}
	return m
}

func g2(tb testing.TB, g *Git, dir string, args ...string) string {
	tb.Helper()
	out, err := g.Run(context.Background(), dir, nil, args...)
	require.NoError(tb, err)
	return out
}
