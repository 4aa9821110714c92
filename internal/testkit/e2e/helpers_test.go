package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// project is the project every test writes: a name with a slash, as
// Gerrit's are, so URL escaping is exercised too.
const project = "tango/core"

// Deadlines, sized for a loaded 2-core machine: a site that has not
// converged or become ready in this long is broken, not slow.
const (
	readyWait    = 60 * time.Second
	convergeWait = 60 * time.Second
	pollEvery    = 25 * time.Millisecond
)

var httpClient = &http.Client{Timeout: 2 * time.Minute}

// startCluster starts a cluster and waits until every site is ready.
func startCluster(tb testing.TB, opts cluster.Options) *cluster.Cluster {
	tb.Helper()
	c := cluster.Start(tb, opts)
	for _, s := range c.Sites() {
		waitReady(tb, s)
	}
	return c
}

// waitReady waits until the site's /readyz answers 200 (refdb reachable,
// caught up).
func waitReady(tb testing.TB, s *cluster.Site) {
	tb.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	var last string
	ok := poll(readyWait, func() bool {
		resp, err := client.Get(s.URL + "/readyz")
		if err != nil {
			last = err.Error()
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%s %s", resp.Status, b)
		return resp.StatusCode == http.StatusOK
	})
	require.True(tb, ok, "site %s not ready within %v: %s\n--- its log since its last start, requests left out ---\n%s",
		s.Name, readyWait, last, sinceStart(s))
}

// sinceStart is the site's log since its last start without the request
// lines (a test polling /readyz floods the tail).
func sinceStart(s *cluster.Site) string {
	log := s.ReadLog()
	if i := strings.LastIndex(log, cluster.StartMarker); i >= 0 {
		log = log[i:]
	}
	var b strings.Builder
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "msg=request") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// poll calls f until it returns true or limit passes; it reports the last
// answer of f.
func poll(limit time.Duration, f func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
}

// createProject creates project at every placement site through s and
// returns the sites the answer names as pending.
func createProject(tb testing.TB, s *cluster.Site, name string) []string {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPut, s.URL+"/api/v1/projects/"+url.PathEscape(name), nil)
	require.NoError(tb, err)
	resp, err := httpClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	var body struct {
		Pending []string `json:"pending"`
	}
	b, _ := io.ReadAll(resp.Body)
	require.Contains(tb, []int{http.StatusCreated, http.StatusOK}, resp.StatusCode, "PUT project at %s: %s", s.Name, b)
	require.NoError(tb, json.Unmarshal(b, &body), "%s", b)
	return body.Pending
}

// repoDir is the bare repository of project at s.
func repoDir(s *cluster.Site, name string) string { return filepath.Join(s.Repos, name+".git") }

// gitCmd runs git in dir with the test's environment and returns its
// combined output.
func gitCmd(env *gittest.GitEnv, dir string, args ...string) (string, error) {
	return env.Try(dir, args...)
}

// push runs `git push` of refspecs from the repository at dir to url and
// returns git's combined output.
func push(env *gittest.GitEnv, dir, url string, refspecs ...string) (string, error) {
	return gitCmd(env, dir, append([]string{"push", "--porcelain", url}, refspecs...)...)
}

// mustPush pushes and fails the test if git fails.
func mustPush(tb testing.TB, env *gittest.GitEnv, dir, url string, refspecs ...string) {
	tb.Helper()
	out, err := push(env, dir, url, refspecs...)
	require.NoError(tb, err, "git push %s %v:\n%s", url, refspecs, out)
}

// revParse returns the object name of rev in dir.
func revParse(tb testing.TB, env *gittest.GitEnv, dir, rev string) string {
	tb.Helper()
	return strings.TrimSpace(env.Run(tb, dir, "rev-parse", "--verify", rev))
}

// siteRefs lists the refs of project at s; an error if the repository is
// missing or git fails (a site still being created or caught up).
func siteRefs(env *gittest.GitEnv, s *cluster.Site, name string) (map[string]string, error) {
	out, err := gitCmd(env, repoDir(s, name), "for-each-ref", "--format=%(objectname) %(refname)")
	if err != nil {
		return nil, fmt.Errorf("for-each-ref at %s: %w: %s", s.Name, err, out)
	}
	refs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if id, ref, ok := strings.Cut(line, " "); ok {
			refs[ref] = id
		}
	}
	return refs, nil
}

// waitRefs waits until project at each of sites has exactly want, then
// checks each repository with git fsck --strict.
func waitRefs(tb testing.TB, env *gittest.GitEnv, name string, want map[string]string, sites ...*cluster.Site) {
	tb.Helper()
	for _, s := range sites {
		var got map[string]string
		var err error
		start := time.Now()
		ok := poll(convergeWait, func() bool {
			got, err = siteRefs(env, s, name)
			return err == nil && maps.Equal(got, want)
		})
		require.True(tb, ok, "site %s: refs of %s not as wanted within %v (err %v):\n%s",
			s.Name, name, time.Since(start).Round(time.Millisecond), err, refsDiff(got, want))
		fsck(tb, env, s, name)
	}
}

// fsck runs git fsck --strict on project at s.
func fsck(tb testing.TB, env *gittest.GitEnv, s *cluster.Site, name string) {
	tb.Helper()
	out, err := gitCmd(env, repoDir(s, name), "fsck", "--strict", "--no-dangling", "--no-progress")
	require.NoError(tb, err, "git fsck --strict at site %s:\n%s", s.Name, out)
}

// refsDiff says how got differs from want.
func refsDiff(got, want map[string]string) string {
	var b strings.Builder
	keys := slices.Sorted(maps.Keys(want))
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		g, w := got[k], want[k]
		switch {
		case g == w:
		case w == "":
			fmt.Fprintf(&b, "  extra   %s %s\n", k, g)
		case g == "":
			fmt.Fprintf(&b, "  missing %s (want %s)\n", k, w)
		default:
			fmt.Fprintf(&b, "  differs %s: got %s want %s\n", k, g, w)
		}
	}
	if b.Len() == 0 {
		return "  (no refs read)"
	}
	return b.String()
}

// readRef reads ref of project at s through the read API, waiting up to
// timeout for it to become until (if not ""). It returns the status and
// the value.
func readRef(tb testing.TB, s *cluster.Site, name, ref, until string, timeout time.Duration) (int, string) {
	tb.Helper()
	u := fmt.Sprintf("%s/api/v1/projects/%s/refs/%s?timeout=%s", s.URL, url.PathEscape(name), url.PathEscape(ref), timeout)
	if until != "" {
		u += "&until=" + until
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	require.NoError(tb, err)
	resp, err := httpClient.Do(req)
	require.NoError(tb, err, "GET %s", u)
	defer resp.Body.Close()
	var body struct {
		Value string `json:"value"`
		Error string `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body.Value
}

// behind reads s's status API: for each peer, the writes of s it has not
// been told of yet, and how many peers the status counts as behind.
func behind(tb testing.TB, s *cluster.Site) (writes map[string]int, oldest map[string]float64, peersBehind int) {
	tb.Helper()
	resp, err := httpClient.Get(s.URL + "/api/v1/status")
	require.NoError(tb, err)
	defer resp.Body.Close()
	require.Equal(tb, http.StatusOK, resp.StatusCode)
	var st struct {
		Peers []struct {
			Name          string  `json:"name"`
			BehindTxns    int     `json:"behind_txns"`
			BehindSeconds float64 `json:"behind_s"`
		} `json:"peers"`
		Lag struct {
			PeersBehind int `json:"peers_behind"`
		} `json:"lag"`
	}
	require.NoError(tb, json.NewDecoder(resp.Body).Decode(&st))
	writes, oldest = map[string]int{}, map[string]float64{}
	for _, p := range st.Peers {
		writes[p.Name], oldest[p.Name] = p.BehindTxns, p.BehindSeconds
	}
	return writes, oldest, st.Lag.PeersBehind
}

// quarantines lists the quarantine directories left in project's object
// store at s: sitesync's (incoming-sitesync-*) and git receive-pack's
// (tmp_objdir-incoming-*).
func quarantines(s *cluster.Site, name string) []string {
	var out []string
	for _, pat := range []string{"incoming-sitesync-*", "tmp_objdir-incoming-*"} {
		m, _ := filepath.Glob(filepath.Join(repoDir(s, name), "objects", pat))
		out = append(out, m...)
	}
	return out
}

// quarantineBytes is the size of every file in the sitesync quarantines of
// project at s, pack files being indexed included.
func quarantineBytes(s *cluster.Site, name string) int64 {
	var n int64
	dirs, _ := filepath.Glob(filepath.Join(repoDir(s, name), "objects", "incoming-sitesync-*"))
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(_ string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil // a quarantine migrating or dropped under us
			}
			if e.Type().IsRegular() {
				if fi, err := e.Info(); err == nil {
					n += fi.Size()
				}
			}
			return nil
		})
	}
	return n
}

// peakRSS is VmHWM of process pid in bytes (0 if unknown).
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb << 10
		}
	}
	return 0
}

// configReloads counts the live reloads in the site's log so far.
func configReloads(s *cluster.Site) int { return strings.Count(s.ReadLog(), "config reloaded") }

// setMode switches the replication mode of every site's config and waits
// until each running site has reloaded it.
func setMode(tb testing.TB, c *cluster.Cluster, mode string) {
	tb.Helper()
	for _, s := range c.Sites() {
		before := configReloads(s)
		require.NoError(tb, s.EditConfig(func(cfg map[string]any) {
			cfg["replication"].(map[string]any)["mode"] = mode
		}))
		if !s.Running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), readyWait)
		err := s.WaitLog(ctx, "config reloaded", before+1)
		cancel()
		require.NoError(tb, err, "site %s did not reload its config", s.Name)
	}
}

// requireGit fails the test when no git is installed (.ci/run installs it).
func requireGit(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		tb.Fatal("git is not installed: the tests need C git (.ci/run installs it)")
	}
}
