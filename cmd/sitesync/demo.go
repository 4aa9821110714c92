package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitesync/sitesync/internal/sample"
	"github.com/sitesync/sitesync/internal/site"
)

// smokeTimeout bounds the whole smoke run: a few seconds on any laptop.
const smokeTimeout = 2 * time.Minute

// smokeProject is the project the smoke run creates.
const smokeProject = "demo/sample"

func newDemoCmd() *cobra.Command {
	var (
		sites int
		dir   string
		smoke bool
		mode  string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole local cluster in one process (embedded refdb)",
		Long: "demo runs --sites sites in this process with the embedded refdb and generated certificates, " +
			"prints each site's git URL and serves until interrupted. With --smoke it creates a project, pushes a " +
			"sample repository to the first site, checks that every site has it, prints the timings and exits 0 or 1.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return demo(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), sites, dir, mode, smoke)
		},
	}
	cmd.Flags().IntVar(&sites, "sites", 3, "number of sites")
	cmd.Flags().StringVar(&dir, "dir", "", "working directory, kept afterwards (default: a temporary directory, removed at exit)")
	cmd.Flags().BoolVar(&smoke, "smoke", false, "push a sample repository, verify every site, print timings, exit 0/1")
	cmd.Flags().StringVar(&mode, "mode", "quorum", "replication mode: async, quorum or sync")
	return cmd
}

func demo(ctx context.Context, out, errOut io.Writer, sites int, dir, mode string, smoke bool) error {
	if sites < 1 || sites > 26 {
		return &exitError{code: 2, err: fmt.Errorf("--sites %d: want 1 to 26", sites)}
	}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sitesync-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "sitesync.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	// Everything goes to the log file; warnings also to the terminal.
	log := slog.New(teeHandler{
		slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}),
		slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}),
	})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l, err := site.NewLocal(ctx, site.LocalOptions{Sites: sites, Dir: dir, Mode: mode, Log: log})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	for _, s := range l.Sites {
		if err := waitReady(ctx, s.URL()); err != nil {
			cancel()
			<-done
			return err
		}
	}
	fmt.Fprintf(out, "sitesync demo: %d sites, replication %s, embedded refdb; working directory %s (log: sitesync.log)\n", sites, mode, dir)
	for _, s := range l.Sites {
		fmt.Fprintf(out, "  site %s  %s   git clone %s/PROJECT.git\n", s.Name(), s.URL(), s.URL())
	}
	if !smoke {
		fmt.Fprintf(out, "create a project with: curl -X PUT %s/api/v1/projects/PROJECT\nCtrl-C stops the cluster.\n", l.Sites[0].URL())
		<-ctx.Done()
		cancel()
		return <-done
	}
	sctx, scancel := context.WithTimeout(ctx, smokeTimeout)
	err = runSmoke(sctx, out, l, dir)
	scancel()
	cancel()
	if rerr := <-done; rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("smoke test failed: %w", err)}
	}
	fmt.Fprintln(out, "smoke test passed")
	return nil
}

// runSmoke creates a project at the first site, pushes a sample repository
// there with the git client, and waits until every site holds exactly its
// refs with a clean fsck.
func runSmoke(ctx context.Context, out io.Writer, l *site.Local, dir string) error {
	first := l.Sites[0]
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, first.URL()+"/api/v1/projects/"+strings.ReplaceAll(smokeProject, "/", "%2F"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("create %s: %w", smokeProject, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("create %s: %s: %s", smokeProject, resp.Status, body)
	}
	created := time.Since(start)

	src := filepath.Join(dir, "smoke-source.git")
	_ = os.RemoveAll(src)
	if err := gitRun(ctx, "", nil, "init", "--quiet", "--bare", "--initial-branch=main", src); err != nil {
		return err
	}
	var stream bytes.Buffer
	if err := sample.Write(&stream, sample.Shape{Commits: 300, Branches: 4, Tags: 5, FileSize: 2000}); err != nil {
		return err
	}
	if err := gitRun(ctx, src, &stream, "fast-import", "--quiet"); err != nil {
		return err
	}
	want, err := lsRemote(ctx, src)
	if err != nil {
		return err
	}
	pushStart := time.Now()
	if err := gitRun(ctx, src, nil, "push", "--quiet", first.URL()+"/"+smokeProject+".git", "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"); err != nil {
		return err
	}
	pushed := time.Since(pushStart)
	fmt.Fprintf(out, "created %s at every site in %s; pushed %d refs to site %s in %s\n", smokeProject, created.Round(time.Millisecond), len(want), first.Name(), pushed.Round(time.Millisecond))

	var failed []string
	for _, s := range l.Sites {
		got, at, err := waitRefs(ctx, s.URL()+"/"+smokeProject+".git", want)
		if err != nil {
			failed = append(failed, fmt.Sprintf("site %s: %v (has %d of %d refs)", s.Name(), err, len(got), len(want)))
			continue
		}
		repo := filepath.Join(dir, s.Name(), "repos", smokeProject+".git")
		if err := gitRun(ctx, repo, nil, "fsck", "--strict", "--no-dangling", "--no-progress"); err != nil {
			failed = append(failed, fmt.Sprintf("site %s: %v", s.Name(), err))
			continue
		}
		fmt.Fprintf(out, "  site %s: all %d refs identical, fsck clean, %s after the push began\n", s.Name(), len(want), at.Sub(pushStart).Round(time.Millisecond))
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// waitRefs polls url with git ls-remote until it advertises exactly want.
func waitRefs(ctx context.Context, url string, want map[string]string) (map[string]string, time.Time, error) {
	var got map[string]string
	for {
		g, err := lsRemote(ctx, url)
		if err == nil {
			got = g
			if equalRefs(got, want) {
				return got, time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return got, time.Time{}, fmt.Errorf("refs differ after %s", smokeTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func equalRefs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// lsRemote lists the refs under refs/ of a repository (a path or a URL).
func lsRemote(ctx context.Context, where string) (map[string]string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", "ls-remote", "--refs", where)
	cmd.Stdout = &out
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("git ls-remote %s: %w", where, err)
	}
	refs := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if id, ref, ok := strings.Cut(line, "\t"); ok {
			refs[ref] = id
		}
	}
	return refs, nil
}

func gitRun(ctx context.Context, dir string, stdin io.Reader, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Stdin = stdin
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=sitesync demo", "GIT_AUTHOR_EMAIL=demo@example.com",
		"GIT_COMMITTER_NAME=sitesync demo", "GIT_COMMITTER_EMAIL=demo@example.com")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// waitReady waits until the site at url answers /readyz.
func waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("site at %s not ready: %w", url, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// teeHandler sends each record to every handler that wants its level.
type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t teeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(attrs)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}
