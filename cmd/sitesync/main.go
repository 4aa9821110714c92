package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "sitesync:", err)
		var exit *exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
		}
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "sitesync",
		Short:         "Keep the git repository stores of several sites in step",
		Long:          "sitesync runs beside each git repository store of a multi-site git hosting deployment and keeps the sites in step: packs stream between sites over QUIC, every ref update is guarded by a compare-and-set in a global ref database, and a push is acknowledged only when its replication rule holds.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(),
		newVersionCmd(),
		newDemoCmd(),
		newCertsCmd(),
		newStatusCmd(),
		newHookCmd(),
		newShardCmd(),
		newBenchCmd(),
	)
	return root
}

// exitError ends the program with a given exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
