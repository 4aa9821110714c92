package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// notYet is what a command that is still being built does: it says what it
// will do and fails, so no script mistakes it for success.
func notYet(what string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		return &exitError{code: 2, err: fmt.Errorf("%s: not implemented yet in this build; it will %s", cmd.CommandPath(), what)}
	}
}

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Latency and throughput harness against the git-protocol baseline"}
	for _, w := range []struct{ name, what string }{
		{"push", "measure small-push acknowledged latency per mode and time until visible at every site"},
		{"pack", "measure a large push: upload time, time until every site holds it, throughput vs link bandwidth"},
		{"notedb", "replay a corpus repository's review history and measure time until visible at the other sites"},
	} {
		c := &cobra.Command{Use: w.name, Short: w.what, RunE: notYet(w.what)}
		c.Flags().Bool("quick", false, "tiny sizes, under a minute")
		cmd.AddCommand(c)
	}
	cmd.AddCommand(newBenchLinkCmd())
	return cmd
}
