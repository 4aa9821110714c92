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
		var exit *exitError
		if errors.As(err, &exit) {
			if exit.err != nil {
				fmt.Fprintln(os.Stderr, "sitesync:", err)
			}
			os.Exit(exit.code)
		}
		fmt.Fprintln(os.Stderr, "sitesync:", err)
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
		newImportCmd(),
		newHookCmd(),
		newShardCmd(),
		newBenchCmd(),
	)
	return root
}

// exitError ends the program with a given exit code; with a nil err it
// prints nothing (the command has said what it had to).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }
