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

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a site's peers, RTT, lag, queues and refdb health",
		Args:  cobra.NoArgs,
		RunE:  notYet("read GET /api/v1/status of the site named by --config and print its peers, RTT, lag, queues and refdb health"),
	}
	cmd.Flags().String("config", "", "the site's configuration file")
	return cmd
}

func newShardCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "shard", Short: "Project placement tools"}
	m := &cobra.Command{
		Use:   "haproxy-map",
		Short: "Print an HAProxy map (project prefix → site backend) and the config lines using it",
		Args:  cobra.NoArgs,
		RunE:  notYet("print an HAProxy map of shard.projects placements and the HAProxy configuration that uses it"),
	}
	m.Flags().String("config", "", "the site's configuration file")
	cmd.AddCommand(m)
	return cmd
}
