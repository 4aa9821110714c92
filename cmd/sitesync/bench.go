package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sitesync/sitesync/bench/harness"
	"github.com/sitesync/sitesync/bench/link"
	"github.com/sitesync/sitesync/bench/sitesync"
	"github.com/sitesync/sitesync/bench/workload"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Latency and throughput harness against the git-protocol baseline"}
	for _, w := range []struct{ name, what string }{
		{harness.Push, "Small pushes: acknowledged latency per mode and time until visible at every site"},
		{harness.Pack, "Large pushes: upload time, time until every site holds them, throughput vs link bandwidth"},
		{harness.NoteDb, "Replay a corpus's review history: time until each NoteDb update is visible at the other sites"},
	} {
		cmd.AddCommand(newBenchRunCmd(w.name, w.what))
	}
	cmd.AddCommand(newBenchLinkCmd())
	return cmd
}

// newBenchRunCmd is `sitesync bench <workload>`: the harness's flags plus
// the choice of targets.
func newBenchRunCmd(workloadName, short string) *cobra.Command {
	var (
		lf        logFlags
		modes     []string
		baselines bool
		acks      int
		loss      float64
		refdbHere bool
		binary    string
		dir       string
		keep      bool
		keepGoing bool
	)
	gofs := flag.NewFlagSet(workloadName, flag.ContinueOnError)
	hf := harness.RegisterFlags(gofs)
	cmd := &cobra.Command{
		Use:   workloadName + " [--quick] [flags]",
		Short: short,
		Long: short + `.

Runs sitesync in each of --modes (a fresh cluster of 'sitesync serve'
processes with a real etcd per workload and mode, every inter-site byte through
the WAN link emulator) and the git-protocol baselines (git-push, git-fetch)
over the same links from the same repositories, one after the other. Writes
results.json, summary.md and PNG plots to --out (default
` + harness.ResultsDir + `/<date>-` + workloadName + `; with --quick nowhere unless --out is given)
and prints the summary.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := lf.logger(cmd.ErrOrStderr())
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			modes = slices.DeleteFunc(modes, func(m string) bool { return m == "" })
			for _, m := range modes {
				if !slices.Contains(sitesync.Modes, m) {
					return &exitError{code: 2, err: fmt.Errorf("--modes: %q is not one of %s", m, strings.Join(sitesync.Modes, ", "))}
				}
			}
			if len(modes) == 0 && !baselines {
				return &exitError{code: 2, err: fmt.Errorf("nothing to run: no --modes and --baselines=false")}
			}
			o, err := hf.Options(workloadName)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			o.Topology.Profile.Loss = loss
			if err := o.Topology.Profile.Validate(); err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--loss: %w", err)}
			}
			if binary == "" {
				if binary, err = os.Executable(); err != nil {
					return fmt.Errorf("bench: the sitesync binary: %w", err)
				}
			}
			o.Log, o.Dir, o.KeepGoing = log, dir, keepGoing
			if !baselines {
				o.Factories = []workload.Factory{}
				if len(modes) > 0 {
					o.Baseline = sitesync.Name(modes[0])
				}
			}
			if len(modes) > 0 {
				o.More = func(e harness.Env) []workload.Factory {
					cfg := sitesync.Config{Topology: e.Topology, Git: e.Git, Binary: binary, Dir: e.Dir,
						Keep: keep, Acks: acks, RefdbAtOrigin: refdbHere, Log: e.Log}
					var fs []workload.Factory
					for _, m := range modes {
						fs = append(fs, sitesync.Factory(cfg, m))
					}
					return fs
				}
				where := "etcd one link from every site (each etcd round trip ≥ 2 × delay)"
				if refdbHere {
					where = "etcd beside the origin (its path unimpaired), one link from each peer"
				}
				o.Notes = append(o.Notes, "sitesync: one 'sitesync serve' process per site, refdb: one real etcd, "+where+
					fmt.Sprintf("; replication.timeout %v", sitesync.WriteTimeout))
			}
			if loss > 0 {
				o.Notes = append(o.Notes, fmt.Sprintf("loss: %g of UDP datagrams (the QUIC mesh; TCP relays do not drop)", loss))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, runErr := harness.Run(ctx, o)
			if rep != nil && len(rep.Samples) > 0 {
				if err := rep.WriteMarkdown(cmd.OutOrStdout()); err != nil {
					return err
				}
			}
			if o.Out != "" && (runErr == nil || o.KeepGoing) {
				fmt.Fprintf(cmd.OutOrStdout(), "\nreport written to %s\n", o.Out)
			}
			return runErr
		},
	}
	cmd.Flags().AddGoFlagSet(gofs)
	cmd.Flags().StringSliceVar(&modes, "modes", sitesync.Modes, "sitesync replication modes to run (none: --modes '')")
	cmd.Flags().BoolVar(&baselines, "baselines", true, "also run the git-protocol baselines (git-push, git-fetch)")
	cmd.Flags().IntVar(&acks, "acks", 0, "quorum mode: W, sites that must hold a write, origin included (default: a majority)")
	cmd.Flags().Float64Var(&loss, "loss", 0, "fraction of UDP datagrams dropped on every link (e.g. 0.001)")
	cmd.Flags().BoolVar(&refdbHere, "refdb-at-origin", false, "put etcd beside the origin site instead of one link from every site")
	cmd.Flags().StringVar(&binary, "binary", "", "sitesync binary the sites run (default: this executable)")
	cmd.Flags().StringVar(&dir, "dir", "", "scratch directory (default: a temporary one, removed after)")
	cmd.Flags().BoolVar(&keepGoing, "keep-going", false, "when a target fails, record it in the report and run the next one (exit status 1 at the end)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep each cluster's directory (site logs) under --dir")
	lf.register(cmd)
	return cmd
}

func newBenchLinkCmd() *cobra.Command {
	var lf logFlags
	cmd := &cobra.Command{
		Use:   "link SPEC...",
		Short: "Run WAN link emulator relays on loopback until interrupted",
		Long: `Run UDP and TCP relays on loopback that delay, jitter, drop and rate-limit
the traffic between sites, so a local cluster sees a WAN. Each SPEC is

  udp|tcp:LISTEN->TARGET[,delay=D][,jitter=D][,loss=P][,bw=RATE]

with options for both directions, or prefixed ab. (towards TARGET) or ba.
(back). Example: 50 ms one way, 1 Gbit/s, 0.1% loss in front of a QUIC port:

  sitesync bench link 'udp:127.0.0.1:9443->127.0.0.1:7443,delay=50ms,bw=1Gbit,loss=0.1%'

Only loopback addresses (127.0.0.0/8) are accepted.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := lf.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			specs, err := link.ParseSpecs(args)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return link.Serve(ctx, specs, log)
		},
	}
	lf.register(cmd)
	return cmd
}
