package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sitesync/sitesync/bench/link"
)

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
