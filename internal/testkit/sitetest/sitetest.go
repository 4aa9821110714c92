// Package sitetest runs in-process clusters (site.Local) for tests: start
// one for the length of a test, wait for its sites, create projects. Test
// binaries that use it call HookMain from TestMain, because the sites' hook
// scripts run the test binary as `sitesync hook NAME`.
package sitetest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/hook"
	"github.com/sitesync/sitesync/internal/site"
	"github.com/sitesync/sitesync/internal/testkit/syncbuf"
)

// HookMain is the body of TestMain: it answers as the hook when git runs the
// test binary as one, and runs the tests otherwise.
func HookMain(m *testing.M) {
	if len(os.Args) >= 3 && os.Args[1] == "hook" {
		os.Exit(hook.Run(context.Background(), os.Args[2], os.Args[3:], os.Stdin, os.Stderr, os.Getenv))
	}
	os.Exit(m.Run())
}

// Start runs a cluster in a temporary directory until the test ends, waits
// until every site is ready, and shows the cluster's log if the test fails.
// opts.Log nil logs at level.
func Start(tb testing.TB, opts site.LocalOptions, level slog.Level) *site.Local {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	logs := &syncbuf.Buffer{}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := site.NewLocal(ctx, opts)
	require.NoError(tb, err)
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		require.NoError(tb, <-done)
		if tb.Failed() {
			tb.Log(logs.String())
		}
	})
	for _, s := range l.Sites {
		require.Eventually(tb, func() bool {
			resp, err := http.Get(s.URL() + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 30*time.Second, 20*time.Millisecond, "site %s never became ready", s.Name())
	}
	return l
}

// CreateProject creates project through the site at url (201 or 200).
func CreateProject(tb testing.TB, url, project string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPut, url+"/api/v1/projects/"+strings.ReplaceAll(project, "/", "%2F"), nil)
	require.NoError(tb, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(tb, []int{http.StatusCreated, http.StatusOK}, resp.StatusCode, string(body))
}
