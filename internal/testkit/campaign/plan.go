package campaign

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Sites are the sites of every schedule's cluster.
var Sites = []string{"a", "b", "c"}

// Replication modes a schedule runs under.
const (
	Quorum = "quorum"
	Async  = "async"
	Sync   = "sync"
)

// quorumAcks is W in quorum mode: 2 of 3.
const quorumAcks = 2

// Branches a schedule's operations write. main and b1, b2 exist from the
// start; b3, b4 appear when an operation creates them. main is never
// deleted (it is HEAD).
var Branches = []string{"main", "b1", "b2", "b3", "b4"}

// initialBranches are pushed through site a before the faults begin.
var initialBranches = []string{"main", "b1", "b2"}

// OpKind is what an operation does.
type OpKind uint8

const (
	// Push adds Commits new commits on Branch's value at Site and pushes
	// them (a fast-forward, or a creation if Site has no such branch).
	Push OpKind = iota
	// ForcePush makes Commits new commits on the parent of Branch's value
	// at Site and pushes them with +, rewinding the branch.
	ForcePush
	// Delete pushes the deletion of a branch Site has (not main).
	Delete
	// RacePush makes two different commits on Branch's value at Site and
	// pushes one to Site and one to Other at the same moment.
	RacePush
	// APIMove asks Site's local write API to move Branch from the value
	// Site holds to Target's value at Site, or to its value's parent when
	// Target is "", or to delete it when Target is "-".
	APIMove
	numOpKinds
)

var opNames = [...]string{Push: "push", ForcePush: "force-push", Delete: "delete", RacePush: "race-push", APIMove: "api-move"}

func (k OpKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return fmt.Sprintf("op(%d)", k)
}

// Op is one client operation of a schedule.
type Op struct {
	Kind    OpKind
	Site    string // the site the client talks to
	Other   string // RacePush: the second site
	Branch  string
	Commits int    // new commits per push (Push, ForcePush, RacePush)
	Target  string // APIMove: see OpKind
	// Pick chooses among what exists only at run time (Delete: which
	// branch of Site's), so the choice is the seed's too.
	Pick uint32
	// Pause is how long the client waits before the operation.
	Pause time.Duration
}

func (o Op) String() string {
	switch o.Kind {
	case RacePush:
		return fmt.Sprintf("race-push %s at %s+%s", o.Branch, o.Site, o.Other)
	case Delete:
		return fmt.Sprintf("delete at %s", o.Site)
	case APIMove:
		to := o.Target
		switch to {
		case "":
			to = "parent"
		case "-":
			to = "deleted"
		}
		return fmt.Sprintf("api-move %s to %s at %s", o.Branch, to, o.Site)
	}
	return fmt.Sprintf("%s %s at %s", o.Kind, o.Branch, o.Site)
}

// FaultKind is what a fault does.
type FaultKind uint8

const (
	// KillSite SIGKILLs Site's serve (and its git children) and starts it
	// again For later.
	KillSite FaultKind = iota
	// PauseSite SIGSTOPs Site's process group and SIGCONTs it For later.
	PauseSite
	// PartitionSite cuts every link of Site (peers and etcd) for For.
	PartitionSite
	// KillEtcd SIGKILLs etcd and restarts it on the same data dir For later.
	KillEtcd
	// PauseEtcd SIGSTOPs etcd and SIGCONTs it For later.
	PauseEtcd
	// CrashAfterCommit restarts Site with SITESYNC_FAULT=after-refdb-commit,
	// pushes a new commit on Branch to it, waits up to For for it to die at
	// the crash point, and restarts it without the fault.
	CrashAfterCommit
	numFaultKinds
)

var faultNames = [...]string{KillSite: "kill", PauseSite: "pause", PartitionSite: "partition", KillEtcd: "kill-etcd", PauseEtcd: "pause-etcd", CrashAfterCommit: "crash-after-commit"}

func (k FaultKind) String() string {
	if int(k) < len(faultNames) {
		return faultNames[k]
	}
	return fmt.Sprintf("fault(%d)", k)
}

// Fault is one fault of a schedule. It begins After the client begins
// operation AtOp (later if its target is under another fault, or two
// faults are active: then as soon as that ends), so it often lands inside
// a request, and is healed For later, whatever the operations do.
type Fault struct {
	Kind   FaultKind
	Site   string // "" for the etcd faults
	Branch string // CrashAfterCommit: the branch of the write that trips it
	AtOp   int
	After  time.Duration
	For    time.Duration
}

// target is what the fault acts on: a site name or "etcd".
func (f Fault) target() string {
	if f.Site == "" {
		return "etcd"
	}
	return f.Site
}

func (f Fault) String() string {
	at := fmt.Sprintf("@op%d+%v", f.AtOp, f.After)
	if f.Site == "" {
		return fmt.Sprintf("%s %s for %v", f.Kind, at, f.For)
	}
	return fmt.Sprintf("%s %s %s for %v", f.Kind, f.Site, at, f.For)
}

// Plan is one schedule: everything its seed decides. Generate makes it; Run
// carries it out. The same seed and Shape give the same Plan.
type Plan struct {
	Seed  uint64
	Shape string // the Shape's name
	Mode  string // Quorum, Async or Sync
	Acks  int    // Quorum: W
	// Delay is the one-way delay of every link (site-site and site-etcd).
	Delay  time.Duration
	Ops    []Op
	Faults []Fault // in AtOp order
}

// Required is how many sites an acknowledged write must be durable at
// (DESIGN.md §4, invariant 1), origin included.
func (p Plan) Required() int {
	switch p.Mode {
	case Async:
		return 1
	case Sync:
		return len(Sites)
	}
	return p.Acks
}

// String is a one-line summary: mode, operations, faults.
func (p Plan) String() string {
	mode := p.Mode
	if p.Mode == Quorum {
		mode = fmt.Sprintf("%s/%d", p.Mode, p.Acks)
	}
	var fs []string
	for _, f := range p.Faults {
		fs = append(fs, f.String())
	}
	return fmt.Sprintf("seed %d (%s) %s delay %v: %d ops; faults: %s", p.Seed, p.Shape, mode, p.Delay, len(p.Ops), strings.Join(fs, ", "))
}

// Shape sizes the schedules Generate makes.
type Shape struct {
	Name      string
	Ops       int // operations per schedule
	MaxFaults int // faults per schedule: 1 to MaxFaults
	// MaxFor bounds a fault's duration (a crash-after-commit fault's wait
	// for the crash is 2 to 3 times longer: the tripping push must get
	// through the vote first).
	MaxFor time.Duration
	// LongFor, if set, makes one in four partitions and pauses (of a site
	// or of etcd) a long outage of OutageMin to LongFor: longer than the
	// coordinator's refdb timeout and its read-back after it, where a
	// write's outcome is unknown to its origin for good.
	LongFor time.Duration
	Mode    string // "" lets the seed choose (quorum 3 in 5, async 1, sync 1)
}

// OutageMin is the shortest long outage: past the coordinator's refdb
// timeout (10 s, internal/coord).
const OutageMin = 12 * time.Second

// Short is the suite's shape: a schedule takes well under a minute.
var Short = Shape{Name: "short", Ops: 12, MaxFaults: 3, MaxFor: 4 * time.Second}

// Long is the shape of a long campaign (-campaign.schedules).
var Long = Shape{Name: "long", Ops: 30, MaxFaults: 6, MaxFor: 6 * time.Second, LongFor: 25 * time.Second}

// maxAfter bounds how far into its operation a fault begins: about one
// request's time, so faults land before, inside and after requests.
const maxAfter = 1500 * time.Millisecond

// maxConcurrentFaults is how many faults may be active at once: two
// overlapping faults (a site down while etcd stalls) are where the
// interesting interleavings are; three would mostly refuse every write.
const maxConcurrentFaults = 2

// opWeights and faultWeights are the relative frequencies of the kinds.
var (
	opWeights    = [numOpKinds]int{Push: 30, ForcePush: 10, Delete: 8, RacePush: 17, APIMove: 25}
	faultWeights = [numFaultKinds]int{KillSite: 20, PauseSite: 15, PartitionSite: 20, KillEtcd: 12, PauseEtcd: 12, CrashAfterCommit: 21}
)

// Generate makes the schedule of seed: pure and deterministic.
func Generate(seed uint64, s Shape) Plan {
	rng := rand.New(rand.NewPCG(seed, 0x5173_5eed))
	p := Plan{Seed: seed, Shape: s.Name, Mode: s.Mode}
	if p.Mode == "" {
		p.Mode = []string{Quorum, Quorum, Quorum, Async, Sync}[rng.IntN(5)]
	}
	if p.Mode == Quorum {
		p.Acks = quorumAcks
	}
	p.Delay = []time.Duration{0, 0, 5 * time.Millisecond, 20 * time.Millisecond}[rng.IntN(4)]

	site := func() string { return Sites[rng.IntN(len(Sites))] }
	for range s.Ops {
		op := Op{
			Kind:   OpKind(weighted(rng, opWeights[:])),
			Site:   site(),
			Branch: Branches[rng.IntN(len(Branches))],
			Pick:   rng.Uint32(),
			Pause:  time.Duration(50+rng.IntN(250)) * time.Millisecond,
		}
		switch op.Kind {
		case Push, ForcePush, RacePush:
			op.Commits = 1 + rng.IntN(3)
		case Delete:
			op.Branch = ""
		case APIMove:
			switch r := rng.IntN(10); {
			case r < 4:
				op.Target = "" // the parent: a rewind
			case r < 5 && op.Branch != "main":
				op.Target = "-"
			default:
				op.Target = Branches[rng.IntN(len(Branches))]
			}
		}
		if op.Kind == RacePush {
			for op.Other = site(); op.Other == op.Site; op.Other = site() {
			}
		}
		p.Ops = append(p.Ops, op)
	}

	n := 1 + rng.IntN(max(1, s.MaxFaults))
	for range n {
		f := Fault{Kind: FaultKind(weighted(rng, faultWeights[:])), AtOp: rng.IntN(s.Ops)}
		f.After = time.Duration(rng.Int64N(int64(maxAfter))).Truncate(10 * time.Millisecond)
		f.For = time.Second + time.Duration(rng.Int64N(int64(s.MaxFor-time.Second)+1))
		f.For = f.For.Round(100 * time.Millisecond)
		if s.LongFor > OutageMin && (f.Kind == PartitionSite || f.Kind == PauseSite || f.Kind == PauseEtcd) && rng.IntN(4) == 0 {
			f.For = (OutageMin + time.Duration(rng.Int64N(int64(s.LongFor-OutageMin)))).Round(100 * time.Millisecond)
		}
		switch f.Kind {
		case KillEtcd, PauseEtcd:
		case CrashAfterCommit:
			f.Site = site()
			f.Branch = Branches[rng.IntN(len(Branches))]
			f.For = 2*f.For + 2*time.Second
		default:
			f.Site = site()
		}
		p.Faults = append(p.Faults, f)
	}
	slices.SortStableFunc(p.Faults, func(x, y Fault) int { return x.AtOp - y.AtOp })
	return p
}

// weighted picks an index with probability proportional to its weight.
func weighted(rng *rand.Rand, weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	r := rng.IntN(total)
	for i, w := range weights {
		if r < w {
			return i
		}
		r -= w
	}
	return len(weights) - 1
}
