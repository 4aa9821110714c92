package config

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/syncbuf"
)

const waitFor = 10 * time.Second // generous: the machine is shared

const (
	v1 = site + peers + "replication: {projects: [{match: 'All-*', mode: sync}]}\n"
	v2 = site + peers + "replication: {projects: [{match: 'All-*', mode: async}]}\n"
	v3 = site + peers + "replication: {projects: [{match: 'All-*', mode: quorum, acks: 3}]}\n"
)

type fixture struct {
	dir  string
	path string
	live *Live
	log  *syncbuf.Buffer
}

// newFixture writes content as the config file and returns a Live on it.
func newFixture(tb testing.TB, content string) *fixture {
	tb.Helper()
	f := &fixture{dir: tb.TempDir(), log: &syncbuf.Buffer{}}
	f.path = writeFile(tb, f.dir, content)
	var err error
	f.live, err = NewLive(f.path, slog.New(slog.NewTextHandler(f.log, nil)))
	require.NoError(tb, err)
	return f
}

// run starts Run and waits until it watches the file and SIGHUP; it stops Run
// and waits for it to return at cleanup.
func (f *fixture) run(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.live.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(tb, err)
		case <-time.After(waitFor):
			tb.Error("Run did not return after cancel")
		}
	})
	select {
	case <-f.live.running:
	case err := <-done:
		tb.Fatalf("Run returned early: %v", err)
	case <-time.After(waitFor):
		tb.Fatal("Run did not start")
	}
}

// next waits for a snapshot on ch that satisfies ok.
func next(tb testing.TB, ch <-chan *Config, ok func(*Config) bool) *Config {
	tb.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case c, open := <-ch:
			require.True(tb, open, "subscription closed")
			if ok(c) {
				return c
			}
		case <-deadline:
			tb.Fatal("no matching snapshot before the deadline")
			return nil
		}
	}
}

func modeOfAll(m Mode) func(*Config) bool {
	return func(c *Config) bool { return c.Rule("All-Projects").Mode == m }
}

func TestLiveReloadOnRename(t *testing.T) {
	f := newFixture(t, v1)
	ch, cancel := f.live.Subscribe()
	defer cancel()
	first := <-ch
	assert.Same(t, f.live.Current(), first, "a subscriber gets the current snapshot at once")
	f.run(t)

	writeFile(t, f.dir, v2)
	got := next(t, ch, modeOfAll(ModeAsync))
	assert.Same(t, got, f.live.Current())
	assert.Equal(t, ModeSync, first.Rule("All-Projects").Mode, "an old snapshot never changes")
	require.Eventually(t, func() bool { return strings.Contains(f.log.String(), "config reloaded") }, waitFor, 10*time.Millisecond)
	assert.Contains(t, f.log.String(), "replication.projects[0].mode")
}

func TestLiveReloadOnSIGHUP(t *testing.T) {
	f := newFixture(t, v1)
	// Rewrite before Run watches, so only the signal can bring it in.
	writeFile(t, f.dir, v2)
	ch, cancel := f.live.Subscribe()
	defer cancel()
	f.run(t)
	assert.Equal(t, ModeSync, f.live.Current().Rule("All-Projects").Mode)

	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	next(t, ch, modeOfAll(ModeAsync))
	assert.Contains(t, f.log.String(), "config reloaded")
}

func TestLiveInvalidEditKeepsOldSnapshot(t *testing.T) {
	f := newFixture(t, v1)
	old := f.live.Current()
	ch, cancel := f.live.Subscribe()
	defer cancel()
	<-ch
	f.run(t)

	// Valid YAML, invalid config, and a live key changed too: nothing applies.
	writeFile(t, f.dir, strings.Replace(v2, "replication: {", "replication: {acks: 0, ", 1))
	require.Eventually(t, func() bool { return strings.Contains(f.log.String(), "config reload failed") }, waitFor, 10*time.Millisecond)
	assert.Contains(t, f.log.String(), "replication.acks: must be at least 1")
	assert.Same(t, old, f.live.Current())
	select {
	case c := <-ch:
		t.Fatalf("subscriber notified of %p after an invalid edit", c)
	default:
	}

	// A broken file (half-written YAML) is refused the same way.
	writeFile(t, f.dir, "site: {name: a\n")
	require.Eventually(t, func() bool { return strings.Count(f.log.String(), "config reload failed") >= 2 }, waitFor, 10*time.Millisecond)
	assert.Same(t, old, f.live.Current())

	// Fixing the file applies it.
	writeFile(t, f.dir, v2)
	next(t, ch, modeOfAll(ModeAsync))
}

func TestLiveRefusesKeysThatNeedARestart(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		key  string
	}{
		{"http.listen", func(s string) string { return s + "http: {listen: '127.0.0.1:9090'}\n" }, "http.listen"},
		{"site.name", func(s string) string {
			return strings.Replace(s, "site: {name: a,", "site: {name: d,", 1)
		}, "site.name"},
		{"peer address", func(s string) string { return strings.Replace(s, "10.0.0.3", "10.0.0.9", 1) }, "mesh.peers[1].addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, v1)
			old := f.live.Current()
			f.run(t)

			// The replication change in the same edit must not apply either.
			writeFile(t, f.dir, tt.edit(v2))
			require.Eventually(t, func() bool {
				return strings.Contains(f.log.String(), "config change refused") &&
					strings.Contains(f.log.String(), "key="+tt.key+" ")
			}, waitFor, 10*time.Millisecond, "log: %s", f.log.String())
			assert.Same(t, old, f.live.Current())
			assert.Equal(t, ModeSync, f.live.Current().Rule("All-Projects").Mode)

			err := f.live.Reload()
			require.ErrorIs(t, err, ErrRefused)
			var re *RefusedError
			require.True(t, errors.As(err, &re))
			assert.Contains(t, re.Keys, tt.key)
			assert.Contains(t, err.Error(), tt.key)
		})
	}
}

func TestReloadDirect(t *testing.T) {
	f := newFixture(t, v1)
	old := f.live.Current()

	require.NoError(t, f.live.Reload())
	assert.Same(t, old, f.live.Current(), "an unchanged file is not republished")

	writeFile(t, f.dir, "site: {}\n")
	err := f.live.Reload()
	var ce *Error
	require.True(t, errors.As(err, &ce), "%v", err)
	assert.Same(t, old, f.live.Current())

	// shard and notedb are live too.
	writeFile(t, f.dir, v1+"shard: {projects: [{match: 'tango/*', sites: [b]}]}\nnotedb: {max_bytes: 1MiB}\n")
	require.NoError(t, f.live.Reload())
	assert.Equal(t, []string{"b"}, f.live.Current().Placement("tango/x"))
	assert.Equal(t, ByteSize(1<<20), f.live.Current().NoteDB.MaxBytes)
}

func TestSubscribeLatestValue(t *testing.T) {
	f := newFixture(t, v1)
	ch, cancel := f.live.Subscribe()
	// Never read while three snapshots are published: the reloader must not
	// block, and the reader then sees only the newest.
	for _, v := range []string{v2, v3, v1 + "shard: {projects: [{match: 'x', sites: [c]}]}\n"} {
		writeFile(t, f.dir, v)
		require.NoError(t, f.live.Reload())
	}
	got := <-ch
	assert.Same(t, f.live.Current(), got)
	assert.Equal(t, []string{"c"}, got.Placement("x"))
	select {
	case c := <-ch:
		t.Fatalf("stale snapshot %p queued", c)
	default:
	}

	cancel()
	cancel() // idempotent
	_, open := <-ch
	assert.False(t, open, "cancel closes the channel")
	writeFile(t, f.dir, v2)
	require.NoError(t, f.live.Reload(), "publishing after a cancel must not panic")
}

func TestNewLiveInvalid(t *testing.T) {
	dir := t.TempDir()
	_, err := NewLive(filepath.Join(dir, "missing.yaml"), nil)
	require.Error(t, err)
	_, err = NewLive(writeFile(t, dir, "site: {name: a}\n"), nil)
	assert.ErrorContains(t, err, "site.repos: required")
}

// Concurrent readers while reloading: run with -race.
func TestLiveConcurrentReaders(t *testing.T) {
	f := newFixture(t, v1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				c := f.live.Current()
				_ = c.Rule("All-Users")
				_ = c.Placement("tango/x")
			}
		})
	}
	for i := range 20 {
		writeFile(t, f.dir, []string{v1, v2, v3}[i%3])
		require.NoError(t, f.live.Reload())
	}
	cancel()
	wg.Wait()
}
