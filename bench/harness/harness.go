package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/sitesync/sitesync/bench/baseline"
	"github.com/sitesync/sitesync/bench/report"
	"github.com/sitesync/sitesync/bench/workload"
)

// Workload names.
const (
	Push   = "push"
	Pack   = "pack"
	NoteDb = "notedb"
)

// Workloads are every workload, in the order a run makes them.
var Workloads = []string{Push, Pack, NoteDb}

// Sizes of a full run and of a --quick one (a run that only shows the
// harness works, in well under a minute).
const (
	DefaultPushes   = 50
	DefaultPackSize = 256 << 20
	DefaultPacks    = 3
	// DefaultNoteDbUpdates bounds the replay: a git-protocol replication of
	// one update of a 5,600-ref repository takes about a second, so the
	// whole history of a real corpus (tens of thousands of updates) would
	// take hours per target.
	DefaultNoteDbUpdates = 300

	QuickPushes        = 5
	QuickPackSize      = 2 << 20
	QuickPacks         = 1
	QuickNoteDbUpdates = 10

	// Synthetic corpus shape, when no corpus is given.
	syntheticChanges, syntheticMetas = 6, 4
)

// Project is the name of the project every site holds.
const Project = "bench/project"

// Options say what to run. Zero values take the defaults of a full run, or
// of a quick one if Quick is set.
type Options struct {
	Workloads []string // subset of Workloads; nil means all
	Quick     bool
	Topology  workload.Topology // no sites: workload.DefaultTopology()

	// Seed is the bare repository the push and pack workloads start from;
	// "" means the corpus's repository as the notedb replay starts from it.
	Seed string
	// Corpus is a git bundle or bare repository of a Gerrit project for the
	// notedb workload; "" means a small synthetic one.
	Corpus string

	Pushes        int
	PackSize      int64
	Packs         int
	NoteDbUpdates int // < 0: the whole history

	// Factories are the systems under test; nil means the baselines.
	Factories []workload.Factory
	// More, if set, is called once Dir and Git are settled and returns
	// more systems under test, run after Factories (sitesync's targets,
	// which need the run's scratch space and git environment).
	More func(env Env) []workload.Factory
	// Notes are added to the report's notes (how the targets were set up).
	Notes []string
	// KeepGoing: a (workload, target) pair that fails is recorded in the
	// report's notes with the samples it made, and the run goes on; Run
	// writes the report and returns every failure, joined.
	KeepGoing bool
	// Baseline names the target the ratio column divides by; "" means
	// git-push.
	Baseline string

	// Dir is scratch space ("" for a temporary directory, removed after).
	Dir string
	// Out is where the report is written ("" for nowhere).
	Out string
	// Git runs git; nil means an isolated environment under Dir.
	Git *workload.Git
	Log *slog.Logger
}

// Env is what Options.More gets: the run's topology, git and a scratch
// directory of its own.
type Env struct {
	Topology workload.Topology
	Git      *workload.Git
	Dir      string
	Log      *slog.Logger
}

// ErrUnknownWorkload is returned for a workload name not in Workloads.
var ErrUnknownWorkload = errors.New("unknown workload")

func (o *Options) defaults() error {
	if len(o.Workloads) == 0 {
		o.Workloads = Workloads
	}
	for _, w := range o.Workloads {
		if !slices.Contains(Workloads, w) {
			return fmt.Errorf("%w %q (want one of %s)", ErrUnknownWorkload, w, strings.Join(Workloads, ", "))
		}
	}
	if len(o.Topology.Sites) == 0 {
		o.Topology = workload.DefaultTopology()
	}
	if err := o.Topology.Profile.Validate(); err != nil {
		return err
	}
	pick := func(v *int, full, quick int) {
		if *v == 0 {
			*v = full
			if o.Quick {
				*v = quick
			}
		}
	}
	pick(&o.Pushes, DefaultPushes, QuickPushes)
	pick(&o.Packs, DefaultPacks, QuickPacks)
	pick(&o.NoteDbUpdates, DefaultNoteDbUpdates, QuickNoteDbUpdates)
	if o.PackSize == 0 {
		o.PackSize = DefaultPackSize
		if o.Quick {
			o.PackSize = QuickPackSize
		}
	}
	if o.Baseline == "" {
		o.Baseline = baseline.PushName
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Run makes the run o describes and returns its report, also written to
// o.Out if set.
func Run(ctx context.Context, o Options) (*report.Report, error) {
	if err := o.defaults(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	log := o.Log.With("component", "bench")
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "sitesync-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	if o.Git == nil {
		g, err := workload.IsolatedGit(filepath.Join(o.Dir, "home"))
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		o.Git = g
	}
	if o.Factories == nil {
		o.Factories = baseline.Factories(baseline.Config{Topology: o.Topology, Git: o.Git, Dir: filepath.Join(o.Dir, "sites"), Log: o.Log})
	}
	if o.More != nil {
		o.Factories = append(slices.Clip(o.Factories), o.More(Env{Topology: o.Topology, Git: o.Git, Dir: mkdir(o.Dir, "more"), Log: o.Log})...)
	}
	started := time.Now()
	rep := &report.Report{Meta: report.Meta{
		Started: started, Quick: o.Quick, Machine: machine(ctx, o.Git), Baseline: o.Baseline,
		Link: report.LinkProfile{Sites: o.Topology.Sites, Delay: o.Topology.Profile.Delay,
			Jitter: o.Topology.Profile.Jitter, Bandwidth: o.Topology.Profile.Bandwidth},
	}}

	rep.Meta.Notes = append(rep.Meta.Notes, o.Notes...)
	// The corpus's replay (and its repository as the push/pack seed).
	var replay *workload.Replay
	if slices.Contains(o.Workloads, NoteDb) || o.Seed == "" {
		corpus := o.Corpus
		if corpus == "" {
			c, err := workload.SyntheticCorpus(ctx, o.Git, mkdir(o.Dir, "synthetic"), syntheticChanges, syntheticMetas)
			if err != nil {
				return nil, fmt.Errorf("bench: %w", err)
			}
			corpus = c
			rep.Meta.Notes = append(rep.Meta.Notes, fmt.Sprintf("corpus: synthetic (%d changes × %d meta commits)", syntheticChanges, syntheticMetas))
		} else {
			rep.Meta.Notes = append(rep.Meta.Notes, "corpus: "+corpus)
		}
		limit := o.NoteDbUpdates
		if limit < 0 {
			limit = 0
		}
		t0 := time.Now()
		r, err := workload.PrepareNoteDb(ctx, o.Git, corpus, mkdir(o.Dir, "corpus"), Project, limit)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		replay = r
		log.Info("corpus prepared", "chains", r.Chains, "commits", r.Commits, "replay", len(r.Updates), "took", time.Since(t0))
		rep.Meta.Notes = append(rep.Meta.Notes, fmt.Sprintf("notedb replay: the last %d of %d meta commits of %d changes, in committer-time order",
			len(r.Updates), r.Commits, r.Chains))
	}
	var failed []error
	seed := o.Seed
	if seed == "" {
		seed = replay.Seed.Peers
		rep.Meta.Notes = append(rep.Meta.Notes, "push/pack seed: the corpus repository")
	}
	refs, err := o.Git.Run(ctx, seed, nil, "for-each-ref", "--format=x")
	if err != nil {
		return nil, fmt.Errorf("bench: seed: %w", err)
	}
	rep.Meta.Notes = append(rep.Meta.Notes, fmt.Sprintf("repository at every site: %d refs", strings.Count(refs, "\n")))

	for _, w := range o.Workloads {
		switch w {
		case Push:
			rep.Meta.Notes = append(rep.Meta.Notes, fmt.Sprintf("push: %d pushes of one commit (%d bytes)", o.Pushes, workload.PushBytes))
		case Pack:
			rep.Meta.Notes = append(rep.Meta.Notes, fmt.Sprintf("pack: %d pushes of %d MiB of incompressible content", o.Packs, o.PackSize>>20))
		}
		for _, f := range o.Factories {
			cfg := workload.Config{Topology: o.Topology, Git: o.Git, Dir: mkdir(o.Dir, "clients"), Log: o.Log}
			s := workload.Seed{Project: Project, Origin: seed, Peers: seed}
			if w == NoteDb {
				s = replay.Seed
			}
			t0 := time.Now()
			samples, err := runOne(ctx, f, s, func(t workload.Target) ([]report.Sample, error) {
				if m, ok := t.(workload.Metered); ok && !slices.Contains(rep.Meta.Notes, m.WireNote()) {
					rep.Meta.Notes = append(rep.Meta.Notes, m.WireNote())
				}
				switch w {
				case Push:
					return workload.Push(ctx, cfg, t, seed, o.Pushes)
				case Pack:
					return workload.Pack(ctx, cfg, t, seed, o.PackSize, o.Packs)
				default:
					return workload.NoteDb(ctx, cfg, t, replay)
				}
			})
			rep.Samples = append(rep.Samples, samples...)
			if err != nil {
				err = fmt.Errorf("bench %s against %s: %w", w, f.Name, err)
				if !o.KeepGoing {
					return rep, err
				}
				log.Error("workload failed", "workload", w, "target", f.Name, "samples", len(samples), "error", err)
				rep.Meta.Notes = append(rep.Meta.Notes, fmt.Sprintf("FAILED after %d samples: %v", len(samples), err))
				failed = append(failed, err)
				continue
			}
			log.Info("workload done", "workload", w, "target", f.Name, "samples", len(samples), "took", time.Since(t0))
		}
	}
	rep.Meta.Duration = time.Since(started)
	if o.Out != "" {
		if _, err := rep.WriteDir(o.Out); err != nil {
			return rep, fmt.Errorf("bench: %w", err)
		}
	}
	return rep, errors.Join(failed...)
}

// runOne starts a target, runs one workload against it and stops it.
func runOne(ctx context.Context, f workload.Factory, s workload.Seed, run func(workload.Target) ([]report.Sample, error)) (_ []report.Sample, err error) {
	t, err := f.Start(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	defer func() {
		if cerr := t.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	return run(t)
}

func mkdir(parent, name string) string {
	d := filepath.Join(parent, name)
	_ = os.MkdirAll(d, 0o755)
	return d
}

// machine describes this host.
func machine(ctx context.Context, g *workload.Git) report.Machine {
	m := report.Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	if v, err := g.Run(ctx, "", nil, "--version"); err == nil {
		m.Git = strings.TrimSpace(v)
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
