package e2e_test

import (
	"testing"
	"time"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// TestPushReplicates: a generated repository pushed at a, then incremental
// pushes (new commits, a branch update, a branch deletion, new tags), reach
// every site with identical refs and an fsck-clean repository, in each mode.
func TestPushReplicates(t *testing.T) {
	requireGit(t)
	tests := []struct {
		name string
		mode string
		acks int
	}{
		{name: "mode=async", mode: "async"},
		{name: "mode=quorum", mode: "quorum", acks: 2},
		{name: "mode=sync", mode: "sync"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, cluster.Options{Sites: 3, Mode: tt.mode, Acks: tt.acks, Timeout: 10 * time.Second})
			a := c.Site("a")
			env := gittest.Env(t)
			createProject(t, a, project)
			src := gittest.Generate(t, env, gittest.Shape{Commits: 80, Branches: 4, Tags: 5})
			url := a.GitURL(project)

			mustPush(t, env, src, url, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
			waitRefs(t, env, project, env.Refs(t, src), c.Sites()...)

			// Incremental: main and a branch move, a branch goes, tags come.
			gittest.AddCommits(t, env, src, "main", 4)
			gittest.AddCommits(t, env, src, "branch-2", 2)
			env.Run(t, src, "tag", "-a", "-m", "release 10", "v10", "main")
			env.Run(t, src, "tag", "light-1", "main~2")
			mustPush(t, env, src, url, "main", "branch-2", ":refs/heads/branch-1", "v10", "light-1")
			env.Run(t, src, "update-ref", "-d", "refs/heads/branch-1")
			waitRefs(t, env, project, env.Refs(t, src), c.Sites()...)

			// One more small push: a single commit on main.
			gittest.AddCommits(t, env, src, "main", 1)
			mustPush(t, env, src, url, "main")
			waitRefs(t, env, project, env.Refs(t, src), c.Sites()...)
		})
	}
}
