package campaign_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/campaign"
	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

var (
	flagSchedules = flag.Int("campaign.schedules", 0, "run this many schedules of the long shape, seeds from -campaign.seed, instead of the short campaign")
	flagSeed      = flag.Uint64("campaign.seed", 1, "the first seed of a long campaign")
	flagShape     = flag.String("campaign.shape", "", "short or long: the shape of the schedules (default: short for the suite's seeds, long with -campaign.schedules)")
	flagMode      = flag.String("campaign.mode", "", "quorum, async or sync for every schedule (default: the seed chooses)")
	flagKeep      = flag.String("campaign.keep", "", "keep each failing schedule's directory (serve logs, repositories) under this directory")
	flagVerbose   = flag.Bool("campaign.verbose", false, "log every operation and fault as it happens (otherwise only a failing schedule's log is shown)")
)

// shortSeeds are the suite's schedules: between them, every mode and every
// fault kind (TestShortSeedsCover keeps it so).
var shortSeeds = []uint64{8, 31, 123}

// scheduleTimeout bounds one schedule: set-up (a minute at most), the
// operations (each bounded by opTimeout), ConvergeBound, the checks.
const scheduleTimeout = 8 * time.Minute

// shape is the shape the flags ask for.
func shape(tb testing.TB, long bool) campaign.Shape {
	tb.Helper()
	s := campaign.Short
	if long {
		s = campaign.Long
	}
	switch *flagShape {
	case "":
	case "short":
		s = campaign.Short
	case "long":
		s = campaign.Long
	default:
		tb.Fatalf("-campaign.shape %q: want short or long", *flagShape)
	}
	s.Mode = *flagMode
	return s
}

// TestCampaign runs the short campaign, or with -campaign.schedules N the
// long one, and prints its table.
func TestCampaign(t *testing.T) {
	seeds := shortSeeds
	long := *flagSchedules > 0
	if long {
		seeds = nil
		for i := range *flagSchedules {
			seeds = append(seeds, *flagSeed+uint64(i))
		}
	}
	sh := shape(t, long)
	var reports []*campaign.Report
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rep := runSchedule(t, campaign.Generate(seed, sh))
			if rep != nil {
				reports = append(reports, rep)
				t.Logf("seed %d: %s, %d faults, converged in %v: %s", seed, rep.Writes, len(rep.Faults),
					rep.Converged.Round(100*time.Millisecond), rep.Result())
			}
		})
	}
	var b bytes.Buffer
	campaign.WriteTable(&b, reports)
	t.Logf("\n%s", b.String())
}

// runSchedule runs one plan, fails the test with every violation it finds,
// and returns its report (nil if it could not run).
func runSchedule(t *testing.T, p campaign.Plan) *campaign.Report {
	t.Helper()
	rep, dir, log := run(t, p, campaign.Config{})
	if rep == nil || rep.OK() {
		return rep
	}
	t.Errorf("%s\nwrites %s; faults: %s\n%s\n--- the run ---\n%s--- the sites' logs (requests left out) ---\n%s",
		p, rep.Writes, strings.Join(rep.Faults, "; "), rep.Details(), log, siteLogs(dir))
	if *flagKeep != "" {
		t.Logf("kept %s", dir)
	}
	return rep
}

// run runs one plan with cfg (Dir and Logf filled in here) and returns its
// report (nil and a failed test if it could not run), its directory and
// its log.
func run(t *testing.T, p campaign.Plan, cfg campaign.Config) (*campaign.Report, string, string) {
	t.Helper()
	dir := t.TempDir()
	if *flagKeep != "" {
		dir = filepath.Join(*flagKeep, fmt.Sprintf("seed-%d-%s", p.Seed, time.Now().Format("150405")))
	}
	var mu sync.Mutex
	var log bytes.Buffer
	logf := func(format string, args ...any) {
		line := fmt.Sprintf("%s "+format, append([]any{time.Now().Format("15:04:05.000")}, args...)...)
		if *flagVerbose {
			t.Log(line)
			return
		}
		mu.Lock()
		fmt.Fprintln(&log, line)
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), scheduleTimeout)
	defer cancel()
	cfg.Dir, cfg.Logf = dir, logf
	rep, err := campaign.Run(ctx, p, cfg)
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		t.Errorf("%s: could not run: %v\n%s", p, err, log.String())
		return nil, dir, log.String()
	}
	if rep.OK() && *flagKeep != "" {
		_ = os.RemoveAll(dir)
	}
	return rep, dir, log.String()
}

// TestTamperingIsSeen: the campaign can fail. Site c's repository
// gets a branch behind sitesync's back (git update-ref with hooks off), at
// a commit the refdb never held: the run must report it as a foreign value
// at c, and report nothing else anywhere else.
func TestTamperingIsSeen(t *testing.T) {
	p := campaign.Generate(shortSeeds[0], campaign.Short)
	p.Ops, p.Faults = p.Ops[:4], nil
	const ref = "refs/heads/tampered"
	env := gittest.Env(t)
	tamper := func(ctx context.Context, op int, c *cluster.Cluster) error {
		if op != 1 {
			return nil
		}
		dir := filepath.Join(c.Site("c").Repos, campaign.Project+".git")
		out, err := env.Try(dir, "commit-tree", "-p", "main", "-m", "behind sitesync's back", "main^{tree}")
		if err != nil {
			return fmt.Errorf("commit-tree: %v: %s", err, out)
		}
		if out, err := env.Try(dir, "-c", "core.hooksPath=/dev/null", "update-ref", ref, strings.TrimSpace(out)); err != nil {
			return fmt.Errorf("update-ref: %v: %s", err, out)
		}
		return nil
	}
	// The tampered branch never converges: a short bound ends the wait.
	rep, _, log := run(t, p, campaign.Config{Tamper: tamper, ConvergeBound: 10 * time.Second})
	require.NotNil(t, rep)
	require.Empty(t, rep.Errors, log)
	var foreign bool
	for _, v := range rep.Violations {
		require.Equal(t, "c", v.Site, "only c was tampered with: %s", v)
		require.Equal(t, ref, v.Ref, "only %s was tampered with: %s", ref, v)
		foreign = foreign || v.Kind == campaign.Foreign
	}
	require.True(t, foreign, "the tampered branch is not reported as foreign: %v\n%s", rep.Violations, log)
}

// siteLogs is the tail of each site's serve.log without request lines.
func siteLogs(dir string) string {
	const tail = 80
	var b strings.Builder
	for _, s := range campaign.Sites {
		path := filepath.Join(dir, "cluster", s, "serve.log")
		data, _ := os.ReadFile(path)
		var lines []string
		for _, l := range strings.Split(string(data), "\n") {
			if !strings.Contains(l, "msg=request") && l != "" {
				lines = append(lines, l)
			}
		}
		if len(lines) > tail {
			lines = lines[len(lines)-tail:]
		}
		fmt.Fprintf(&b, "--- site %s: %s (last %d lines; %d starts) ---\n%s\n", s, path, tail,
			strings.Count(string(data), cluster.StartMarker), strings.Join(lines, "\n"))
	}
	return b.String()
}

// TestShortSeedsCover: the suite's few schedules still reach every mode
// and every fault kind (change shortSeeds when the generator changes).
func TestShortSeedsCover(t *testing.T) {
	modes, faults := map[string]bool{}, map[campaign.FaultKind]bool{}
	for _, seed := range shortSeeds {
		p := campaign.Generate(seed, campaign.Short)
		modes[p.Mode] = true
		for _, f := range p.Faults {
			faults[f.Kind] = true
		}
	}
	require.Len(t, modes, 3, "modes of %v", shortSeeds)
	require.Len(t, faults, 6, "fault kinds of %v: %v", shortSeeds, faults)
}
