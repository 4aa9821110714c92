package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/hook"
	"github.com/sitesync/sitesync/internal/site"
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
	var path string
	install := &cobra.Command{
		Use:   "install --config FILE",
		Short: "Wire sitesync's hooks into a repository store served by another C-git server",
		Long: "install writes sitesync's hook scripts into site.state/hooks and points every repository under " +
			"site.repos at them (core.hooksPath), so every ref write by any git process there goes through the " +
			"daemon (sitesync serve with the same configuration). Run it again after creating repositories " +
			"outside sitesync, or set core.hooksPath in the system git configuration instead.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			binary, err := os.Executable()
			if err != nil {
				return err
			}
			hooksDir := filepath.Join(cfg.Site.State, "hooks")
			if err := hook.WriteScripts(hooksDir, binary, site.HookSocket(cfg.Site.State)); err != nil {
				return err
			}
			root, err := git.NewRoot(cfg.Site.Repos)
			if err != nil {
				return err
			}
			projects, err := hook.Install(cmd.Context(), root, hooksDir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sitesync hooks (%s) installed in %d repositories under %s\n", hooksDir, len(projects), root.Dir())
			return nil
		},
	}
	install.Flags().StringVar(&path, "config", "", "the site's configuration file")
	_ = install.MarkFlagRequired("config")
	cmd.AddCommand(install)
	return cmd
}
