package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sitesync/sitesync/internal/refmove"
)

// heldLocks describes the transaction an update-ref process may hold lock
// files for, so that they can be removed if the process dies without
// removing them itself. git 2.39's files backend, preparing a transaction,
// creates "<ref>.lock" for each ref (empty, or holding "<new>\n" once
// written: an update to the value a ref already has leaves it empty), and,
// when the transaction deletes refs, takes "packed-refs.lock" (empty) and
// keeps it until the transaction ends; "packed-refs.new" is the packed-refs
// file being written under that lock.
type heldLocks struct {
	updates []RefUpdate
	deletes bool
	// since is the coarse clock, which file times are taken from, read
	// before the transaction was sent: a file made by it is no older.
	since time.Time
	// until is when commit or abort was sent; zero before. Every lock of the
	// transaction was written by then; one newer is another writer's, made
	// after git released ours.
	until time.Time
}

func newHeldLocks(updates []RefUpdate) *heldLocks {
	h := &heldLocks{updates: slices.Clone(updates), since: coarseNow()}
	for _, up := range updates {
		if up.New == refmove.ZeroID {
			h.deletes = true
		}
	}
	return h
}

// lockCleanupTimeout bounds the git rev-parse that finds where the lock
// files are, run once per updater and only when a process died dirty: it
// answers in milliseconds, 10 s is for a loaded machine.
const lockCleanupTimeout = 10 * time.Second

// removeLocks removes the lock files update-ref may have left of the
// transaction in u.held when it died without its cleanup: exactly those of
// the transaction's refs, packed-refs.lock (and packed-refs.new) only when
// it deleted refs, and only files whose time and content are those git
// gives its own, so that another writer's lock stays. It runs as the proc's
// dirty callback, with u.p.mu held.
//
// The one lock it cannot tell from ours: another writer's, on a ref of this
// transaction, made within one tick of the file-system clock before the
// transaction began, still held while the dead git waited for it, and with
// the content ours would have had. Such a lock would be removed.
func (u *RefUpdater) removeLocks() error {
	h := u.held
	if h == nil {
		return nil
	}
	dir, err := u.lockDir()
	if err != nil {
		return fmt.Errorf("remove the lock files of a killed update-ref: %w", err)
	}
	var errs []error
	for _, up := range h.updates {
		path, ok := refLockPath(dir, up.Ref)
		if !ok {
			continue
		}
		want := []string{""}
		if up.New != refmove.ZeroID {
			want = append(want, up.New+"\n")
		}
		if _, err := h.removeIfOurs(path, want); err != nil {
			errs = append(errs, err)
		}
	}
	if h.deletes {
		removed, err := h.removeIfOurs(filepath.Join(dir, "packed-refs.lock"), []string{""})
		if err != nil {
			errs = append(errs, err)
		}
		if removed {
			// Written only under that lock, and in the way of the next
			// packed-refs write (git creates it with O_EXCL).
			if _, err := h.removeIfOurs(filepath.Join(dir, "packed-refs.new"), nil); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeIfOurs removes path if it is a regular file written within the
// transaction's window and holding one of want (any content when want is
// nil).
func (h *heldLocks) removeIfOurs(path string, want []string) (bool, error) {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return false, nil
	}
	mtime := fi.ModTime()
	if mtime.Before(h.since) || !h.until.IsZero() && mtime.After(h.until) {
		return false, nil
	}
	if want != nil {
		if fi.Size() > 64 {
			return false, nil
		}
		f, err := os.Open(path)
		if err != nil {
			return false, nil
		}
		b, err := io.ReadAll(io.LimitReader(f, 65))
		f.Close()
		if err != nil || !slices.Contains(want, string(b)) {
			return false, nil
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// refLockPath is the lock file of ref in the repository dir, unless the name
// could lead outside refs/ (git refuses such names, so it never made one).
func refLockPath(dir, ref string) (string, bool) {
	for comp := range strings.SplitSeq(ref, "/") {
		if comp == "" || comp == "." || comp == ".." {
			return "", false
		}
	}
	return filepath.Join(dir, filepath.FromSlash(ref)+".lock"), true
}

// lockDir is the directory of the repository's ref files: the fast path's
// if it resolved it, else git's common directory.
func (u *RefUpdater) lockDir() (string, error) {
	if u.gitDir != "" {
		return u.gitDir, nil
	}
	if u.fast != nil && u.fast.gitDir != "" {
		u.gitDir = u.fast.gitDir
		return u.gitDir, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), lockCleanupTimeout)
	defer cancel()
	out, err := output(ctx, u.p.dir, "rev-parse", "--path-format=absolute", "--git-common-dir")
	if err != nil {
		return "", err
	}
	u.gitDir = filepath.Clean(strings.TrimSpace(string(out)))
	return u.gitDir, nil
}
