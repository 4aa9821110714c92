package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/glob"
)

// defaultStatusTimeout bounds the status request: the endpoint answers from
// memory, so a site that takes longer is as good as down for an operator.
const defaultStatusTimeout = 5 * time.Second

// siteStatus is the body of GET /api/v1/status.
type siteStatus struct {
	Site     string `json:"site"`
	Instance string `json:"instance"`
	Peers    []struct {
		Name      string   `json:"name"`
		Connected bool     `json:"connected"`
		RTTMs     *float64 `json:"rtt_ms"`
		Since     string   `json:"since"`
		// Transactions of this site the peer has not been told of yet, and
		// the age of the oldest; absent from older sites.
		BehindTxns    int     `json:"behind_txns"`
		BehindSeconds float64 `json:"behind_s"`
	} `json:"peers"`
	RefDB struct {
		Backend string `json:"backend"`
		Healthy bool   `json:"healthy"`
		Error   string `json:"error"`
	} `json:"refdb"`
	Queues struct {
		Outbound int `json:"outbound"`
		Prepared int `json:"prepared"`
	} `json:"queues"`
	// Lag is reported as projects_behind, caught_up, peers_behind, or any
	// of them.
	Lag struct {
		ProjectsBehind *int  `json:"projects_behind"`
		CaughtUp       *bool `json:"caught_up"`
		PeersBehind    *int  `json:"peers_behind"`
	} `json:"lag"`
	// Unimported are repositories the refdb has no record of (absent from
	// older sites).
	Unimported []string `json:"unimported"`
}

func newStatusCmd() *cobra.Command {
	var path string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status --config FILE",
		Short: "Show a site's peers, RTT, lag, queues and refdb health, and where the config's rules place projects",
		Long: "Read GET {http.url}/api/v1/status of the site named by --config and print its peers, RTT, lag,\n" +
			"queues and refdb health, then the sites, replication rules and shard rules of the configuration\n" +
			"and where each rule places projects. Exits 1 when the site cannot be reached (the configuration\n" +
			"part is still printed), 2 when the configuration is bad.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			st, statusErr := fetchStatus(ctx, cfg.HTTP.URL)
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "site %s at %s (config %s)\n\n", cfg.Site.Name, cfg.HTTP.URL, path)
			if statusErr != nil {
				fmt.Fprintf(w, "SITE DOWN: %v\n\n", statusErr)
			} else {
				printStatus(w, cfg, st)
			}
			printRules(w, cfg)
			if statusErr != nil {
				return &exitError{code: 1, err: fmt.Errorf("site %s is down: %w", cfg.Site.Name, statusErr)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "the site's configuration file (YAML)")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultStatusTimeout, "how long to wait for the site's answer")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// fetchStatus reads GET {base}/api/v1/status.
func fetchStatus(ctx context.Context, base string) (*siteStatus, error) {
	u := strings.TrimSuffix(base, "/") + "/api/v1/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	st, err := decodeStatus(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return st, nil
}

// decodeStatus parses a status body; unknown fields are ignored so that a
// newer site still reports to an older command.
func decodeStatus(body []byte) (*siteStatus, error) {
	var st siteStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("bad status body: %w", err)
	}
	return &st, nil
}

func printStatus(w io.Writer, cfg *config.Config, st *siteStatus) {
	fmt.Fprintf(w, "Status\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	site := st.Site
	if site != cfg.Site.Name {
		site += fmt.Sprintf("  (WARNING: the configuration names this site %q)", cfg.Site.Name)
	}
	fmt.Fprintf(tw, "  site\t%s\n", site)
	fmt.Fprintf(tw, "  instance\t%s\n", st.Instance)
	refdb := "healthy"
	if !st.RefDB.Healthy {
		refdb = "UNHEALTHY"
		if st.RefDB.Error != "" {
			refdb += ": " + st.RefDB.Error
		}
	}
	fmt.Fprintf(tw, "  refdb\t%s, %s\n", st.RefDB.Backend, refdb)
	fmt.Fprintf(tw, "  queues\toutbound %d, prepared %d\n", st.Queues.Outbound, st.Queues.Prepared)
	var lag []string
	if st.Lag.ProjectsBehind != nil {
		lag = append(lag, plural(*st.Lag.ProjectsBehind, "project")+" behind")
	}
	switch {
	case st.Lag.CaughtUp == nil:
	case *st.Lag.CaughtUp:
		lag = append(lag, "caught up")
	default:
		lag = append(lag, "NOT caught up")
	}
	if st.Lag.PeersBehind != nil && *st.Lag.PeersBehind > 0 {
		lag = append(lag, plural(*st.Lag.PeersBehind, "peer")+" behind this site")
	}
	if len(lag) == 0 {
		lag = append(lag, "unknown")
	}
	fmt.Fprintf(tw, "  lag\t%s\n", strings.Join(lag, ", "))
	if len(st.Unimported) > 0 {
		fmt.Fprintf(tw, "  unimported\t%s (sitesync import makes them replicated projects)\n", strings.Join(st.Unimported, ", "))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nPeers\n")
	if len(st.Peers) == 0 {
		fmt.Fprintf(w, "  (none)\n")
	} else {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  NAME\tCONNECTED\tRTT\tSINCE\tBEHIND\n")
		for _, p := range st.Peers {
			conn, rtt := "no", "-"
			if p.Connected {
				conn = "yes"
			}
			// The RTT is measured only while connected.
			if p.RTTMs != nil && p.Connected {
				rtt = fmt.Sprintf("%.1fms", *p.RTTMs)
			}
			since := p.Since
			if since == "" {
				since = "-"
			}
			behind := "-"
			if p.BehindTxns > 0 {
				behind = fmt.Sprintf("%s, oldest %s ago", plural(p.BehindTxns, "transaction"),
					time.Duration(p.BehindSeconds*float64(time.Second)).Round(100*time.Millisecond))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.Name, conn, rtt, since, behind)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
}

// printRules prints the configuration's sites and rules, and for each rule
// where it places projects.
func printRules(w io.Writer, cfg *config.Config) {
	sites := cfg.Sites()
	fmt.Fprintf(w, "Sites (configuration)\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, s := range sites {
		u, _ := cfg.SiteURL(s)
		self := ""
		if i == 0 {
			self = "\t(this site)"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", s, u, self)
	}
	tw.Flush()

	every := "every site (" + strings.Join(sites, ", ") + ")"
	fmt.Fprintf(w, "\nShard rules (first match wins; unmatched projects are global: %s)\n", every)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(cfg.Shard.Projects) == 0 {
		fmt.Fprintf(tw, "  (none: every project is global)\n")
	}
	for i, r := range cfg.Shard.Projects {
		fmt.Fprintf(tw, "  [%d]\t%s\t→ %s\n", i, r.Match, strings.Join(r.Sites, ", "))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nReplication rules (first match wins)\n")
	repl := compileAll(cfg.Replication.Projects, func(o config.ReplicationOverride) string { return o.Match })
	shards := compileAll(cfg.Shard.Projects, func(r config.ShardRule) string { return r.Match })
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i := 0; i <= len(repl); i++ {
		label, include, exclude := "default", []*glob.Pattern(nil), repl
		if i < len(repl) {
			label = fmt.Sprintf("[%d] %s", i, cfg.Replication.Projects[i].Match)
			include, exclude = repl[i:i+1], repl[:i]
		}
		fmt.Fprintf(tw, "  %s\n", label)
		any := false
		// Each placement this rule can meet: a shard rule, or global.
		for s := 0; s <= len(shards); s++ {
			inc, exc := include, exclude
			where := "global"
			if s < len(shards) {
				where = fmt.Sprintf("shard [%d]", s)
				inc = append(append([]*glob.Pattern(nil), inc...), shards[s])
				exc = append(append([]*glob.Pattern(nil), exc...), shards[:s]...)
			} else {
				exc = append(append([]*glob.Pattern(nil), exc...), shards...)
			}
			name, ok, err := glob.Witness(inc, exc)
			switch {
			case errors.Is(err, glob.ErrTooComplex):
				fmt.Fprintf(tw, "    \t%s\t(patterns too complex to compare)\n", where)
				continue
			case !ok:
				continue
			}
			any = true
			r := cfg.Rule(name)
			fmt.Fprintf(tw, "    \t%s\ton %s\t%s, acks %d, timeout %s\te.g. %q\n",
				where, strings.Join(cfg.Placement(name), ", "), r.Mode, r.Acks, r.Timeout, name)
		}
		if !any {
			fmt.Fprintf(tw, "    \tnever applies (earlier rules match every project it matches)\n")
		}
	}
	tw.Flush()
}

// compileAll compiles the match patterns of validated rules.
func compileAll[T any](rules []T, match func(T) string) []*glob.Pattern {
	out := make([]*glob.Pattern, len(rules))
	for i, r := range rules {
		out[i] = glob.MustCompile(match(r)) // Validate compiled them already
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
