package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// BenchmarkPushAck measures push-to-acknowledged latency: a stock `git push`
// of one new commit to main at site a, from the client's start to its
// successful exit, over loopback. mode=none is one site without a refdb or
// peers: the cost of the front door and git alone. Run it with a fixed
// count, the clusters being slow to start:
//
//	go test -run '^$' -bench BenchmarkPushAck -benchtime 30x ./internal/testkit/e2e/
func BenchmarkPushAck(b *testing.B) {
	tests := []struct {
		name string
		opts cluster.Options
	}{
		{name: "mode=none", opts: cluster.Options{Sites: 1, Refdb: "none", Mode: "async"}},
		{name: "mode=async", opts: cluster.Options{Sites: 3, Mode: "async"}},
		{name: "mode=quorum", opts: cluster.Options{Sites: 3, Mode: "quorum", Acks: 2}},
		{name: "mode=sync", opts: cluster.Options{Sites: 3, Mode: "sync"}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			tt.opts.Timeout = 10 * time.Second
			c := startCluster(b, tt.opts)
			a := c.Site("a")
			env := gittest.Env(b)
			createProject(b, a, project)
			src := gittest.Generate(b, env, gittest.Shape{Commits: 20})
			url := a.GitURL(project)
			mustPush(b, env, src, url, "main")
			waitRefs(b, env, project, env.Refs(b, src), c.Sites()...)
			// A few unmeasured pushes: connections up, caches warm.
			for i := range 3 {
				pushOne(b, env, src, url, fmt.Sprintf("warm-up %d", i))
			}
			i := 0
			for b.Loop() {
				b.StopTimer()
				id := newCommit(b, env, src, fmt.Sprintf("push %d", i))
				i++
				b.StartTimer()
				mustPush(b, env, src, url, id+":refs/heads/main")
				b.StopTimer()
				env.Run(b, src, "update-ref", "refs/heads/main", id)
				b.StartTimer()
			}
			b.StopTimer()
			waitRefs(b, env, project, env.Refs(b, src), c.Sites()...)
		})
	}
}

// newCommit writes a commit on top of main in the bare repository at dir
// (same tree, new message) and returns its id.
func newCommit(tb testing.TB, env *gittest.GitEnv, dir, msg string) string {
	tb.Helper()
	return strings.TrimSpace(env.Run(tb, dir, "commit-tree", "main^{tree}", "-p", "main", "-m", msg))
}

// pushOne pushes one new commit to main.
func pushOne(tb testing.TB, env *gittest.GitEnv, dir, url, msg string) {
	tb.Helper()
	id := newCommit(tb, env, dir, msg)
	mustPush(tb, env, dir, url, id+":refs/heads/main")
	env.Run(tb, dir, "update-ref", "refs/heads/main", id)
}
