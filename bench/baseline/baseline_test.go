package baseline

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/bench/link"
	"github.com/sitesync/sitesync/bench/workload"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// TestTargets writes once through each kind of update at the origin of each
// baseline target and checks that every peer then holds the value, and that
// the time it took is what the git protocol over the emulated links must
// cost at least, and that its relays counted bytes both ways.
func TestTargets(t *testing.T) {
	const delay = 20 * time.Millisecond
	rtt := 2 * delay
	env := gittest.Env(t)
	g := &workload.Git{Env: env.Vars()}
	seed := gittest.Generate(t, env, gittest.Shape{Commits: 5, Branches: 2})
	topo := workload.Topology{Sites: []string{"a", "b", "c"}, Profile: link.Profile{Delay: delay}}
	cfg := Config{Topology: topo, Git: g, Dir: t.TempDir()}

	// The update: a client's commit on main, then a local write of a new
	// ref to that commit's parent (an object every site already holds).
	client := filepath.Join(t.TempDir(), "client.git")
	env.Run(t, "", "clone", "--quiet", "--bare", seed, client)
	old := env.Refs(t, client)["refs/heads/main"]
	gittest.AddCommits(t, env, client, "main", 1)
	tip := env.Refs(t, client)["refs/heads/main"]

	tests := []struct {
		name string
		// least is what the git protocol costs at least through a relay:
		// a push or fetch over smart HTTP opens a connection (one RTT) and
		// makes two requests (one RTT each); the fetch is started by a
		// notification one one-way delay after the write.
		least time.Duration
	}{
		{name: PushName, least: 3 * rtt},
		{name: FetchName, least: delay + 3*rtt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			tg, err := Start(ctx, cfg, tt.name, workload.Seed{Project: "p/q", Origin: seed, Peers: seed})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, tg.Close()) })
			require.Equal(t, []string{"b", "c"}, tg.Sites())

			before, err := tg.Traffic(ctx)
			require.NoError(t, err)
			require.Zero(t, before, "nothing crossed the links before the first write")
			for _, u := range []workload.Update{
				{Kind: workload.ClientPush, Ref: "refs/heads/main", Old: old, New: tip, Source: client},
				{Kind: workload.LocalWrite, Ref: "refs/changes/01/1/meta", Old: refmove.ZeroID, New: old},
			} {
				start := time.Now()
				acked, err := tg.Write(ctx, u)
				require.NoError(t, err)
				require.Equal(t, u.New, env.Refs(t, tg.Repo("a"))[u.Ref], "origin holds it when acknowledged")
				for _, site := range tg.Sites() {
					at, err := tg.Visible(ctx, site, u.Ref, u.New)
					require.NoError(t, err)
					require.Equal(t, u.New, env.Refs(t, tg.Repo(site))[u.Ref])
					require.False(t, at.Before(acked), "visible before the write was acknowledged")
					require.GreaterOrEqual(t, at.Sub(start), tt.least, "%s %s at %s", u.Kind, u.Ref, site)
				}
				now, err := tg.Traffic(ctx)
				require.NoError(t, err)
				d := now.Sub(before)
				before = now
				// Each peer got at least a ref advertisement's worth of
				// git protocol both ways (a ref line is ≥ 45 bytes).
				require.Greater(t, d.Out, int64(2*45), "%s: out", u.Ref)
				require.Greater(t, d.In, int64(2*45), "%s: in", u.Ref)
			}
			// A value never written is never visible.
			vctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			_, err = tg.Visible(vctx, "b", "refs/heads/main", refmove.ZeroID)
			require.ErrorIs(t, err, context.DeadlineExceeded)
		})
	}
}
