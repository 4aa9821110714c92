package packsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/refmove"
	txnid "github.com/sitesync/sitesync/internal/txn"
)

// quarantinePrefix names quarantine directories inside objects/, beside the
// ones git's own receive-pack makes (tmp_objdir-incoming-*).
const quarantinePrefix = "incoming-sitesync-"

// Quarantine holds one transaction's incoming objects beside a repository.
type Quarantine struct {
	repo string // the repository directory
	dir  string // objects/incoming-sitesync-<txn>
}

// Create makes the quarantine of transaction txn in the repository at repo.
// Creating one that exists returns it, so a retried prepare is harmless.
func Create(repo, txn string) (*Quarantine, error) {
	if err := txnid.Check(txn); err != nil {
		return nil, err
	}
	q := &Quarantine{repo: repo, dir: filepath.Join(repo, "objects", quarantinePrefix+txn)}
	if err := os.MkdirAll(filepath.Join(q.dir, "pack"), 0o755); err != nil {
		return nil, fmt.Errorf("create quarantine: %w", err)
	}
	return q, nil
}

// List returns the transaction ids of the quarantines left in a repository,
// for recovery after a restart.
func List(repo string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(repo, "objects"))
	if err != nil {
		return nil, fmt.Errorf("list quarantines: %w", err)
	}
	var txns []string
	for _, e := range entries {
		if name, ok := strings.CutPrefix(e.Name(), quarantinePrefix); ok && e.IsDir() {
			txns = append(txns, name)
		}
	}
	return txns, nil
}

// Dir is the quarantine's object directory.
func (q *Quarantine) Dir() string { return q.dir }

// IndexPack reads one pack from r into the quarantine. A thin pack is
// completed from the repository's objects. The pack is refused, and leaves
// nothing behind, if any object is corrupt or links to an object that is
// neither in the pack nor in the repository, or if r fails or ends early.
// One IndexPack at a time per quarantine.
func (q *Quarantine) IndexPack(ctx context.Context, r io.Reader) error {
	if _, err := git.IndexPack(ctx, q.repo, r, git.IndexPackOptions{ObjectDir: q.dir, FixThin: true}); err != nil {
		// index-pack leaves its tmp_pack_* behind when its input ends
		// early; no other pack is being written here.
		tmps, _ := filepath.Glob(filepath.Join(q.dir, "pack", "tmp_*"))
		for _, p := range tmps {
			_ = os.Remove(p)
		}
		return fmt.Errorf("index pack into quarantine: %w", err)
	}
	return nil
}

// Missing returns those of ids that are neither in the quarantine nor in the
// repository. Objects in either are complete: every pack was indexed with
// --strict, and the repository holds only complete histories.
func (q *Quarantine) Missing(ctx context.Context, ids []string) ([]string, error) {
	want := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != refmove.ZeroID {
			want = append(want, id)
		}
	}
	missing, err := git.MissingObjects(ctx, q.repo, q.dir, want)
	if err != nil {
		return nil, fmt.Errorf("check objects in quarantine: %w", err)
	}
	return missing, nil
}

// Sync makes the quarantine's files durable.
func (q *Quarantine) Sync() error {
	return filepath.WalkDir(q.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return git.Fsync(p)
	})
}

// Migrate moves the quarantine's objects into the repository's object store
// and removes the quarantine. Packs move before their indexes: git looks for
// packs through their .idx files, so it never sees half a pack. Each moved
// file and the pack directory are synced.
func (q *Quarantine) Migrate() error {
	packDir := filepath.Join(q.repo, "objects", "pack")
	files, err := os.ReadDir(filepath.Join(q.dir, "pack"))
	if err != nil {
		return fmt.Errorf("migrate quarantine: %w", err)
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, f.Name())
	}
	// .idx sorts after .pack and .rev only by luck of the alphabet; order
	// explicitly.
	sort.SliceStable(names, func(i, j int) bool { return rank(names[i]) < rank(names[j]) })
	for _, name := range names {
		src, dst := filepath.Join(q.dir, "pack", name), filepath.Join(packDir, name)
		if err := git.Fsync(src); err != nil {
			return fmt.Errorf("migrate quarantine: %w", err)
		}
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("migrate quarantine: %w", err)
		}
	}
	if err := git.Fsync(packDir); err != nil {
		return fmt.Errorf("migrate quarantine: %w", err)
	}
	if err := q.migrateLoose(); err != nil {
		return err
	}
	return q.Drop()
}

// migrateLoose moves loose objects, which index-pack does not write but a
// future writer of the quarantine might.
func (q *Quarantine) migrateLoose() error {
	entries, err := os.ReadDir(q.dir)
	if err != nil {
		return fmt.Errorf("migrate quarantine: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || len(e.Name()) != 2 {
			continue
		}
		objs, err := os.ReadDir(filepath.Join(q.dir, e.Name()))
		if err != nil {
			return fmt.Errorf("migrate quarantine: %w", err)
		}
		dstDir := filepath.Join(q.repo, "objects", e.Name())
		if err := os.MkdirAll(dstDir, 0o755); err != nil {
			return fmt.Errorf("migrate quarantine: %w", err)
		}
		for _, o := range objs {
			src := filepath.Join(q.dir, e.Name(), o.Name())
			if err := git.Fsync(src); err != nil {
				return fmt.Errorf("migrate quarantine: %w", err)
			}
			if err := os.Rename(src, filepath.Join(dstDir, o.Name())); err != nil {
				return fmt.Errorf("migrate quarantine: %w", err)
			}
		}
		if err := git.Fsync(dstDir); err != nil {
			return fmt.Errorf("migrate quarantine: %w", err)
		}
	}
	return nil
}

// Drop removes the quarantine and everything in it.
func (q *Quarantine) Drop() error {
	if err := os.RemoveAll(q.dir); err != nil {
		return fmt.Errorf("drop quarantine: %w", err)
	}
	return nil
}

// gitQuarantinePrefix names the quarantine directories git's receive-pack
// makes inside objects/ for a push, and removes when the push ends.
const gitQuarantinePrefix = "tmp_objdir-incoming-"

// DropStaleGit removes the quarantines git's receive-pack left in the
// repository at repo — a receive-pack killed mid-push leaves its
// tmp_objdir-incoming-* behind — in which nothing has changed for idle
// before now: a push still receiving writes into its quarantine, and one
// waiting for its hooks' decision waits far less than idle. It returns the
// names of those it removed.
func DropStaleGit(repo string, idle time.Duration, now time.Time) ([]string, error) {
	objects := filepath.Join(repo, "objects")
	entries, err := os.ReadDir(objects)
	if err != nil {
		return nil, fmt.Errorf("list git quarantines: %w", err)
	}
	var dropped []string
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), gitQuarantinePrefix) {
			continue
		}
		dir := filepath.Join(objects, e.Name())
		if changed, err := LastChange(dir); err != nil || now.Sub(changed) < idle {
			continue // changing under us, or in use: leave it
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("drop git quarantine: %w", err))
			continue
		}
		dropped = append(dropped, e.Name())
	}
	return dropped, errors.Join(errs...)
}

// LastChange is when anything in the directory tree at dir last changed:
// the newest modification time of dir and of everything below it. A pack
// being indexed into dir/pack changes files there, not dir itself.
func LastChange(dir string) (time.Time, error) {
	var newest time.Time
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
		return nil
	})
	return newest, err
}

func rank(name string) int {
	switch filepath.Ext(name) {
	case ".pack":
		return 0
	case ".idx":
		return 2
	}
	return 1 // .rev, .keep, .promisor: before the index makes the pack visible
}
