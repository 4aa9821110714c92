package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/git"
)

// defaultImportTimeout bounds the import of one project: the site waits up
// to 10 minutes for its placement sites to copy it before it answers.
const defaultImportTimeout = 15 * time.Minute

// importAnswer is the body of POST /api/v1/projects/{name}/import.
type importAnswer struct {
	Project string            `json:"project"`
	Site    string            `json:"site"`
	Refs    int               `json:"refs"`
	Seeded  int               `json:"seeded"`
	Found   map[string]string `json:"found"`
	Peers   map[string]string `json:"peers"`
	Error   string            `json:"error"`
}

func newImportCmd() *cobra.Command {
	var path string
	var all bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "import --config FILE [PROJECT...|--all]",
		Short: "Make repositories that exist at this site replicated projects",
		Long: "Import each named repository (<project>.git under site.repos), or every repository there with --all,\n" +
			"through the running daemon of the site named by --config (POST /api/v1/projects/{name}/import on its\n" +
			"http.listen): the refdb is seeded with its refs and every placement site copies it.\n\n" +
			"An import is refused, and nothing changed, when a placement site holds a different copy of the\n" +
			"project, when the refdb holds other values for it, or when a placement site cannot be asked.\n" +
			"Importing a project again is harmless. Prints one line per project.\n" +
			"Exits 0 when every project was imported, 1 when any was not, 2 when the site cannot be reached\n" +
			"or the command is used wrongly.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return &exitError{code: 2, err: errors.New("import: name the projects to import, or give --all (not both)")}
			}
			cfg, err := config.Load(path)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			w := cmd.OutOrStdout()
			projects := args
			if all {
				root, err := git.NewRoot(cfg.Site.Repos)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				if projects, err = root.List(); err != nil {
					return &exitError{code: 2, err: err}
				}
				slices.Sort(projects)
				if len(projects) == 0 {
					fmt.Fprintf(w, "no repositories under %s\n", cfg.Site.Repos)
					return nil
				}
			}
			base := localAPI(cfg)
			// A redirect means the project is not placed here: say so
			// rather than import it elsewhere.
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			failed := 0
			for _, p := range projects {
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
				line, ok, err := importOne(ctx, client, base, p, timeout)
				cancel()
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("site %s is not reachable at %s: %w", cfg.Site.Name, base, err)}
				}
				fmt.Fprintln(w, line)
				if !ok {
					failed++
				}
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d projects not imported", failed, len(projects))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "the site's configuration file (YAML)")
	cmd.Flags().BoolVar(&all, "all", false, "import every repository under site.repos")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultImportTimeout, "how long to wait for the import of one project")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// localAPI is the base URL of this site's own daemon: its http.listen (on
// loopback when it listens on every address), not http.url, which may
// name a load balancer — the repositories to import are at this site.
func localAPI(cfg *config.Config) string {
	host, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		return strings.TrimSuffix(cfg.HTTP.URL, "/")
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// importOne asks the site at base to import project and returns the line
// to print and whether it was imported; an error only when the site could
// not be reached at all.
func importOne(ctx context.Context, client *http.Client, base, project string, timeout time.Duration) (line string, ok bool, err error) {
	u := base + "/api/v1/projects/" + url.PathEscape(project) + "/import"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return "", false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Sprintf("%s: NOT IMPORTED: no answer within %s (it may still finish at the site: run the import again to see)", project, timeout), false, nil
		}
		return "", false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", false, fmt.Errorf("POST %s: %w", u, err)
	}
	var a importAnswer
	decodeErr := json.Unmarshal(body, &a)
	switch {
	case resp.StatusCode == http.StatusOK && decodeErr == nil:
		return project + ": " + describeImport(a), true, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fmt.Sprintf("%s: NOT IMPORTED: not placed at this site (the site sends it to %s)", project, resp.Header.Get("Location")), false, nil
	case decodeErr == nil && a.Error != "":
		return fmt.Sprintf("%s: REFUSED: %s", project, oneLine(a.Error)), false, nil
	}
	return fmt.Sprintf("%s: NOT IMPORTED: %s: %s", project, resp.Status, oneLine(string(body))), false, nil
}

// describeImport says what an import did: "imported 243 refs (243 new in
// the refdb); b: copied (had none), c: copied (had an empty repository)".
func describeImport(a importAnswer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "imported %d refs (%d new in the refdb)", a.Refs, a.Seeded)
	if len(a.Peers) == 0 {
		b.WriteString("; no other placement site")
	}
	for i, peer := range slices.Sorted(maps.Keys(a.Peers)) {
		sep := ", "
		if i == 0 {
			sep = "; "
		}
		fmt.Fprintf(&b, "%s%s: %s", sep, peer, a.Peers[peer])
		if had, ok := map[string]string{
			"none": "had none", "empty": "had an empty repository", "identical": "had the same refs", "partial": "had some of the refs",
		}[a.Found[peer]]; ok {
			fmt.Fprintf(&b, " (%s)", had)
		}
	}
	return b.String()
}

// oneLine puts a multi-line message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(s), "\n", " | ")), " ")
}
