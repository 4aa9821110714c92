package harness

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/sitesync/sitesync/bench/link"
	"github.com/sitesync/sitesync/bench/workload"
)

// Flags are the command line of `sitesync bench push|pack|notedb`. Register
// them on a flag.FlagSet (cobra: cmd.Flags().AddGoFlagSet(fs)) and turn them
// into Options with Options.
type Flags struct {
	Quick     bool
	Sites     int
	Delay     time.Duration
	Jitter    time.Duration
	Bandwidth string
	Corpus    string
	Seed      string
	Pushes    int
	Packs     int
	Size      string
	Updates   int
	Out       string
}

// ResultsDir is where a full run writes its report by default, relative to
// the working directory (the repository root).
const ResultsDir = "bench/results"

// RegisterFlags defines the flags on fs with the defaults.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	def := workload.DefaultTopology()
	fs.BoolVar(&f.Quick, "quick", false, "tiny sizes: every workload in under a minute")
	fs.IntVar(&f.Sites, "sites", len(def.Sites), "number of sites (the first is the origin)")
	fs.DurationVar(&f.Delay, "delay", def.Profile.Delay, "one-way delay between every pair of sites")
	fs.DurationVar(&f.Jitter, "jitter", 0, "delay jitter (uniform ±)")
	fs.StringVar(&f.Bandwidth, "bw", link.FormatRate(def.Profile.Bandwidth), "bandwidth of every link and direction (e.g. 1Gbit, 100Mbit; 0: unlimited)")
	fs.StringVar(&f.Corpus, "corpus", "", "git bundle of a Gerrit repository for the notedb replay (default: a synthetic one)")
	fs.StringVar(&f.Seed, "seed", "", "bare repository the push and pack workloads start from (default: the corpus repository)")
	fs.IntVar(&f.Pushes, "pushes", 0, fmt.Sprintf("push workload: pushes (default %d, quick %d)", DefaultPushes, QuickPushes))
	fs.IntVar(&f.Packs, "packs", 0, fmt.Sprintf("pack workload: pushes (default %d, quick %d)", DefaultPacks, QuickPacks))
	fs.StringVar(&f.Size, "size", "", fmt.Sprintf("pack workload: bytes per push, e.g. 256MiB (default %dMiB, quick %dMiB)", DefaultPackSize>>20, QuickPackSize>>20))
	fs.IntVar(&f.Updates, "updates", 0, fmt.Sprintf("notedb workload: most recent meta updates to replay, -1 for all (default %d, quick %d)", DefaultNoteDbUpdates, QuickNoteDbUpdates))
	fs.StringVar(&f.Out, "out", "", "report directory (default: "+ResultsDir+"/<date>-<workload>; with --quick, none)")
	return f
}

// Options turns the flags into the Options of a run of the named workloads
// (all if none).
func (f *Flags) Options(workloads ...string) (Options, error) {
	if f.Sites < 2 {
		return Options{}, fmt.Errorf("--sites %d: need an origin and at least one peer", f.Sites)
	}
	bw, err := link.ParseRate(f.Bandwidth)
	if err != nil {
		return Options{}, fmt.Errorf("--bw: %w", err)
	}
	size, err := parseSize(f.Size)
	if err != nil {
		return Options{}, fmt.Errorf("--size: %w", err)
	}
	sites := make([]string, f.Sites)
	for i := range sites {
		sites[i] = string(rune('a' + i%26))
		if i >= 26 {
			sites[i] += fmt.Sprint(i / 26)
		}
	}
	o := Options{
		Workloads: workloads, Quick: f.Quick,
		Topology: workload.Topology{Sites: sites, Profile: link.Profile{Delay: f.Delay, Jitter: f.Jitter, Bandwidth: bw}},
		Corpus:   f.Corpus, Seed: f.Seed, Pushes: f.Pushes, Packs: f.Packs, PackSize: size, NoteDbUpdates: f.Updates,
		Out: f.Out,
	}
	if err := o.Topology.Profile.Validate(); err != nil {
		return Options{}, err
	}
	if o.Out == "" && !f.Quick {
		name := strings.Join(workloads, "+")
		if name == "" {
			name = "all"
		}
		o.Out = filepath.Join(ResultsDir, time.Now().UTC().Format("2006-01-02")+"-"+name)
	}
	return o, nil
}

// parseSize reads a byte count with an optional KiB, MiB or GiB suffix.
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q (want e.g. 256MiB)", s)
	}
	return n * mult, nil
}
