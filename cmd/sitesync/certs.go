package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sitesync/sitesync/transport"
)

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "certs", Short: "Certificates for the mesh between sites"}
	var dir string
	var sites []string
	init := &cobra.Command{
		Use:   "init --dir DIR --sites a,b,c",
		Short: "Write a CA plus one certificate and key per site (ca.pem, a.pem, a-key.pem …)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(sites) == 0 {
				return &exitError{code: 2, err: fmt.Errorf("--sites: name at least one site")}
			}
			if err := transport.GenerateCerts(dir, sites); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote ca.pem and a certificate and key for %d sites into %s\n", len(sites), dir)
			return nil
		},
	}
	init.Flags().StringVar(&dir, "dir", "certs", "output directory")
	init.Flags().StringSliceVar(&sites, "sites", nil, "site names, comma separated")
	cmd.AddCommand(init)
	return cmd
}
