package e2e_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// raceRounds is how many times the two clients race.
const raceRounds = 50

// conflictMsg is what the losing client must be told.
const conflictMsg = "was updated at site"

// TestConcurrentPushes: two clients, one at a and one at b, push different
// commits to main at the same moment, 50 times. Each round exactly one push
// wins, the loser is told the branch was updated at the other site, and
// every site ends with the winner's value.
func TestConcurrentPushes(t *testing.T) {
	requireGit(t)
	c := startCluster(t, cluster.Options{Sites: 3, Mode: "quorum", Acks: 2, Timeout: 10 * time.Second})
	env := gittest.Env(t)
	createProject(t, c.Site("a"), project)
	src := gittest.Generate(t, env, gittest.Shape{Commits: 10})
	mustPush(t, env, src, c.Site("a").GitURL(project), "main")
	waitRefs(t, env, project, env.Refs(t, src), c.Sites()...)

	type client struct {
		site *cluster.Site
		dir  string
	}
	clients := []*client{{site: c.Site("a")}, {site: c.Site("b")}}
	for _, cl := range clients {
		cl.dir = t.TempDir() + "/client.git"
		env.Run(t, "", "clone", "--bare", "--quiet", cl.site.GitURL(project), cl.dir)
	}

	base := revParse(t, env, src, "main")
	wins := map[string]int{}
	var noWinner, bothWon, told, badMessage int
	start := time.Now()
	for round := range raceRounds {
		// Both clients start from the value every site holds.
		var wg sync.WaitGroup
		news := make([]string, len(clients))
		prepErrs := make([]error, len(clients))
		for i, cl := range clients {
			wg.Go(func() {
				if out, err := gitCmd(env, cl.dir, "fetch", "--quiet", cl.site.GitURL(project), "+refs/heads/main:refs/heads/main"); err != nil {
					prepErrs[i] = fmt.Errorf("fetch at %s: %w\n%s", cl.site.Name, err, out)
					return
				}
				out, err := gitCmd(env, cl.dir, "commit-tree", "main^{tree}", "-p", "main", "-m", fmt.Sprintf("round %d from client at %s", round, cl.site.Name))
				if err != nil {
					prepErrs[i] = fmt.Errorf("commit-tree at %s: %w\n%s", cl.site.Name, err, out)
					return
				}
				news[i] = strings.TrimSpace(out)
			})
		}
		wg.Wait()
		for _, cl := range clients {
			require.NoError(t, errors.Join(prepErrs...), "round %d", round)
			got := revParse(t, env, cl.dir, "main")
			require.Equal(t, base, got, "round %d: client at %s fetched %s, not the value every site holds", round, cl.site.Name, got)
		}

		// Release both pushes at once.
		release := make(chan struct{})
		outs := make([]string, len(clients))
		errs := make([]error, len(clients))
		for i, cl := range clients {
			wg.Go(func() {
				<-release
				outs[i], errs[i] = push(env, cl.dir, cl.site.GitURL(project), news[i]+":refs/heads/main")
			})
		}
		close(release)
		wg.Wait()

		var winners []int
		for i := range clients {
			if errs[i] == nil {
				winners = append(winners, i)
			}
		}
		want := base
		switch len(winners) {
		case 1:
			w, l := winners[0], 1-winners[0]
			wins[clients[w].site.Name]++
			want = news[w]
			switch {
			case strings.Contains(outs[l], conflictMsg):
				told++
			default:
				if badMessage == 0 {
					assert.Contains(t, outs[l], conflictMsg, "round %d: the loser (client at %s) is not told of the conflict", round, clients[l].site.Name)
				}
				badMessage++
			}
		case 0:
			noWinner++
			t.Errorf("round %d: both pushes failed:\n--- at a:\n%s--- at b:\n%s", round, outs[0], outs[1])
		default:
			bothWon++
			t.Errorf("round %d: both pushes succeeded (two histories for one ref):\n--- at a:\n%s--- at b:\n%s", round, outs[0], outs[1])
		}

		// Every site ends with the winner's value (read-your-writes API).
		for _, s := range c.Sites() {
			code, got := readRef(t, s, project, "refs/heads/main", want, convergeWait)
			require.Equal(t, 200, code, "round %d: site %s holds %s, want %s", round, s.Name, got, want)
		}
		if bothWon > 0 {
			t.FailNow() // the sites' histories diverged: later rounds mean nothing
		}
		base = want
	}
	t.Logf("%d rounds in %v: wins %v, rounds without a winner %d, losers told of the conflict %d, losers not told %d",
		raceRounds, time.Since(start).Round(time.Millisecond), wins, noWinner, told, badMessage)
	if badMessage > 0 {
		t.Errorf("%d of %d losers were not told of the conflict (the first one's output is above)", badMessage, badMessage+told)
	}
	want, err := siteRefs(env, c.Site("a"), project)
	require.NoError(t, err)
	require.Equal(t, base, want["refs/heads/main"])
	waitRefs(t, env, project, want, c.Sites()...)
}
