package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/sitesync/sitesync/internal/hook"
)

func newHookCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hook",
		Short: "Git hooks that hand ref updates to the local daemon",
	}
	for _, name := range hook.Installed {
		cmd.AddCommand(&cobra.Command{
			Use:   name,
			Short: "What git runs as the " + name + " hook",
			// git passes the phase to reference-transaction; the hook
			// checks its own arguments.
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				code := hook.Run(cmd.Context(), name, args, os.Stdin, os.Stderr, os.Getenv)
				if code != 0 {
					return &exitError{code: code}
				}
				return nil
			},
		})
	}
	install := &cobra.Command{
		Use:   "install",
		Short: "Wire sitesync's hooks into a repository store served by another C-git server",
		Args:  cobra.NoArgs,
		RunE:  notYet("install the reference-transaction hook into every repository under site.repos"),
	}
	install.Flags().String("config", "", "the site's configuration file")
	cmd.AddCommand(install)
	return cmd
}
