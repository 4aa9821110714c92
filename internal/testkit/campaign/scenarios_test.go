package campaign_test

import (
	"testing"
	"time"

	"github.com/sitesync/sitesync/internal/testkit/campaign"
)

// A scenario is a schedule replayed by name in every run of the suite: a
// bug the campaign found (its seed, shape and the violation it showed,
// kept until it is fixed and after, so it stays fixed), or a situation too
// delicate to leave to the seeds' chance. Each is checked like any
// schedule: every invariant, convergence, fsck, empty journals.
//
// When the campaign finds a violation, add the seed here as a named
// scenario with what it found, and leave it failing until the daemon is
// fixed: do not skip it.
var scenarios = []struct {
	name string
	why  string
	plan campaign.Plan
}{
	{
		name: "AsyncOriginCutOffPastRefdbTimeout",
		why: "Site a, in async mode, takes pushes while cut off from etcd and its peers for longer " +
			"than the coordinator's refdb timeout (10 s) and the read-back after it: each push's " +
			"compare-and-set is in flight through the cut link when a gives up, so its outcome is " +
			"unknown to a. The client must not be told 'ok' unless the refdb holds the write, " +
			"must not be told a definite refusal if the refdb takes it after all, and every site " +
			"must converge on whatever the refdb holds.",
		plan: campaign.Plan{
			Seed: 0, Shape: "scenario", Mode: campaign.Async,
			Ops: []campaign.Op{
				{Kind: campaign.Push, Site: "a", Branch: "main", Commits: 1, Pause: 100 * time.Millisecond},
				{Kind: campaign.Push, Site: "a", Branch: "main", Commits: 2, Pause: 100 * time.Millisecond},
				{Kind: campaign.APIMove, Site: "a", Branch: "b1", Target: "main", Pause: 100 * time.Millisecond},
				{Kind: campaign.Push, Site: "b", Branch: "main", Commits: 1, Pause: 100 * time.Millisecond},
			},
			Faults: []campaign.Fault{{Kind: campaign.PartitionSite, Site: "a", AtOp: 1, For: campaign.OutageMin + 2*time.Second}},
		},
	},
	{
		name: "NonAtomicPushWhileRefdbPaused",
		why: "Long seed 215, found on the commit that decided a non-atomic push ref by ref at git's " +
			"'update' hook: etcd is paused for 12.7 s while a push to refs/heads/b3 at a waits for its " +
			"compare-and-set; a gives up after its refdb timeout and refused the ref, which git reports " +
			"as '[remote rejected] (hook declined)' — a definite refusal — yet etcd applied the " +
			"compare-and-set when it resumed (refused-but-decided). A write whose outcome is unknown " +
			"must say so ('refdb unavailable', the whole push refused at 'prepared', where git dies and " +
			"the front door answers every ref with the reason).",
		plan: campaign.Generate(215, campaign.Long),
	},
	{
		name: "RacingNonAtomicPushesWithoutReferenceTransaction",
		why: "Long seed 400, found on the commit that ran the daemon's non-atomic pushes without the " +
			"reference-transaction hook (the 'update' verdict guards each ref) while a push that failed " +
			"whole was still answered 'yes' at 'update', to be refused at 'prepared': with no 'prepared' " +
			"call left, the loser of two racing pushes to one ref was written and acknowledged without a " +
			"refdb decision (8 violations: lost, foreign). 'update' must refuse every ref it does not take.",
		plan: campaign.Generate(400, campaign.Long),
	},
}

func TestScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Log(sc.why)
			runSchedule(t, sc.plan)
		})
	}
}
