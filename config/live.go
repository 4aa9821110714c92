package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadDebounce is how long Run waits after the last change in the config
// file's directory before reloading. Editors and automation write a file in
// several steps (truncate + write, or write a temporary file, rename, chmod),
// each an event; waiting for a short quiet spell reloads once, after the last
// step, instead of parsing half-written files. A quarter second is invisible
// to an operator who just saved the file.
const reloadDebounce = 250 * time.Millisecond

// ErrRefused is what Reload's error matches (errors.Is) when the new file
// changes keys that cannot change while the daemon runs.
var ErrRefused = errors.New("config change needs a restart")

// RefusedError lists the keys that changed but cannot change live. Nothing of
// the new file was applied.
type RefusedError struct {
	File string
	Keys []string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("config %s: %s cannot change without a restart; old config kept", e.File, strings.Join(e.Keys, ", "))
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(t error) bool { return t == ErrRefused }

// Live is the running configuration: an immutable snapshot behind an atomic
// pointer, replaced as a whole by Reload. Safe for concurrent use; Run at most
// once at a time.
type Live struct {
	path string
	log  *slog.Logger
	cur  atomic.Pointer[Config]

	mu   sync.Mutex // serializes Reload; guards subs
	subs map[chan *Config]struct{}

	running     chan struct{} // closed once Run watches the file and SIGHUP
	runningOnce sync.Once
}

// NewLive loads the file at path; it fails if the file is invalid.
func NewLive(path string, log *slog.Logger) (*Live, error) {
	c, err := Load(path)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Live{
		path:    path,
		log:     log.With("component", "config"),
		subs:    map[chan *Config]struct{}{},
		running: make(chan struct{}),
	}
	l.cur.Store(c)
	return l, nil
}

// Current returns the current snapshot. Do not modify it.
func (l *Live) Current() *Config { return l.cur.Load() }

// Subscribe returns a channel that holds the latest snapshot: the current one
// at once, then each one that replaces it. A slow reader never blocks the
// reloader; it skips intermediate snapshots and sees the newest. cancel
// closes the channel; call it when done.
func (l *Live) Subscribe() (<-chan *Config, func()) {
	ch := make(chan *Config, 1)
	l.mu.Lock()
	ch <- l.cur.Load()
	l.subs[ch] = struct{}{}
	l.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.subs, ch)
			close(ch)
			l.mu.Unlock()
		})
	}
}

// Reload loads the file again and, if it is valid and changes only keys that
// may change live (replication, shard, notedb), publishes it. Otherwise it
// returns the error (an *Error, or a *RefusedError matching ErrRefused) and
// the current snapshot stays, entirely. An unchanged file is not republished.
func (l *Live) Reload() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	next, err := Load(l.path)
	if err != nil {
		return err
	}
	changed := Diff(l.cur.Load(), next)
	if len(changed) == 0 {
		return nil
	}
	var refused []string
	for _, k := range changed {
		if !isLive(k) {
			refused = append(refused, k)
		}
	}
	if len(refused) > 0 {
		return &RefusedError{File: l.path, Keys: refused}
	}
	l.cur.Store(next)
	l.log.Info("config reloaded", "file", l.path, "changed", changed)
	for ch := range l.subs {
		select { // latest value: drop the unread older snapshot
		case <-ch:
		default:
		}
		ch <- next // cannot block: we are the only sender and hold mu
	}
	return nil
}

// Run reloads on every change to the config file and on SIGHUP until ctx is
// done, then returns nil after its watcher has stopped. It watches the file's
// directory, not the file, so a file renamed into place (the safe way to
// write it) or a replaced symlink is seen. Failed and refused reloads are
// logged; refused ones with one line per key.
func (l *Live) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	defer w.Close()
	dir := filepath.Dir(l.path)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch config directory %s: %w", dir, err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	base := filepath.Base(l.path)
	// A symlinked file (e.g. a Kubernetes ConfigMap) changes when its target
	// directory is swapped, an event on another name: react to every event.
	fi, err := os.Lstat(l.path)
	anyName := err == nil && fi.Mode()&os.ModeSymlink != 0

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	l.runningOnce.Do(func() { close(l.running) })
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watch config: watcher closed")
			}
			if (filepath.Base(ev.Name) != base && !anyName) || ev.Op == fsnotify.Chmod {
				continue
			}
			timer.Reset(reloadDebounce)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watch config: watcher closed")
			}
			l.log.Warn("config watch error", "file", l.path, "error", err)
		case <-hup:
			l.reloadAndLog("sighup")
		case <-timer.C:
			l.reloadAndLog("file change")
		}
	}
}

func (l *Live) reloadAndLog(cause string) {
	err := l.Reload()
	var re *RefusedError
	switch {
	case err == nil:
	case errors.As(err, &re):
		for _, k := range re.Keys {
			l.log.Error("config change refused: needs a restart; old config kept", "key", k, "file", l.path, "cause", cause)
		}
	default:
		l.log.Error("config reload failed; old config kept", "file", l.path, "cause", cause, "error", err)
	}
}
