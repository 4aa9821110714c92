package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/shard"
)

// defaultMapPath is where the HAProxy configuration expects the map unless
// told otherwise: Debian's haproxy package reads /etc/haproxy.
const defaultMapPath = "/etc/haproxy/sitesync.map"

func newShardCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "shard", Short: "Project placement tools"}
	var path, mapPath, bind, mapOut, cfgOut string
	m := &cobra.Command{
		Use:   "haproxy-map --config FILE",
		Short: "Print an HAProxy map (project prefix → site backend) and the config lines using it",
		Long: "Print an HAProxy map of the shard.projects placements (request path prefix → backend) and the\n" +
			"HAProxy configuration that uses it: a frontend routing with map_beg, one backend per placement,\n" +
			"and a default backend of every site for global projects. Rules a path prefix cannot express\n" +
			"exactly are marked with NOTE comments; a request such a rule sends to the wrong site is still\n" +
			"answered, by that site's 307 redirect.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if mapPath == "" {
				mapPath = defaultMapPath
				if mapOut != "" {
					if mapPath, err = filepath.Abs(mapOut); err != nil {
						return err
					}
				}
			}
			out, err := renderHAProxy(cfg, path, mapPath, bind)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "# ---- map file: %s ----\n%s\n# ---- haproxy configuration ----\n%s", mapPath, out.Map, out.Config)
			for _, f := range []struct{ path, text string }{{mapOut, out.Map}, {cfgOut, out.Config}} {
				if f.path == "" {
					continue
				}
				if err := writeFileAtomic(f.path, []byte(f.text)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	m.Flags().StringVar(&path, "config", "", "a site's configuration file (YAML); every site must list the same shard rules")
	m.Flags().StringVar(&mapPath, "map-path", "", "where HAProxy will read the map (default: the absolute --map-out, else "+defaultMapPath+")")
	m.Flags().StringVar(&bind, "bind", "*:80", "the HAProxy frontend's bind address")
	m.Flags().StringVar(&mapOut, "map-out", "", "also write the map to this file")
	m.Flags().StringVar(&cfgOut, "cfg-out", "", "also write the HAProxy configuration to this file")
	_ = m.MarkFlagRequired("config")
	cmd.AddCommand(m)
	return cmd
}

// renderHAProxy renders cfg's placement for HAProxy.
func renderHAProxy(cfg *config.Config, source, mapPath, bind string) (shard.HAProxyConfig, error) {
	urls := map[string]string{}
	for _, s := range cfg.Sites() {
		urls[s], _ = cfg.SiteURL(s)
	}
	return shard.HAProxy(cfg.ShardMap(), shard.HAProxyOptions{URLs: urls, MapPath: mapPath, Bind: bind, Source: source})
}

// writeFileAtomic writes data to path through a rename, so a reader (HAProxy
// reloading) never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
