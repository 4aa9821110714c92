package notedbfast

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zlib"
	"golang.org/x/sync/errgroup"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/refmove"
)

// ErrMissingObjects is the outcome of a delta that refers to objects
// neither in the delta nor in the repository (typically the parent of a
// meta commit the peer missed); the error is a *MissingError naming them.
var ErrMissingObjects = errors.New("objects missing")

// MissingError names the objects a delta needs that the repository lacks.
// The caller asks the sender for Chain(IDs, what the peer has) or falls
// back to a pack.
type MissingError struct {
	IDs []string
}

func (e *MissingError) Error() string {
	ids := e.IDs
	more := ""
	if len(ids) > 5 {
		ids, more = ids[:5], fmt.Sprintf(" and %d more", len(e.IDs)-5)
	}
	return fmt.Sprintf("objects missing: %s%s", strings.Join(ids, ", "), more)
}

// Is makes errors.Is(err, ErrMissingObjects) true.
func (e *MissingError) Is(target error) bool { return target == ErrMissingObjects }

// Applier writes the objects of deltas into repositories at a peer. It does
// not move refs: the caller does that, in refdb version order, with the
// delta's Updates, after Apply returned nil for that delta.
//
// Apply checks, before writing anything, that every object hashes to its
// id and is well formed, and that everything each object and each new ref
// value refers to is in the delta, in an earlier delta of the batch, or in
// the repository. Objects are then written durably before Apply returns:
// loose objects (zlib, temporary file, fsync, rename, fsync of the
// directories) for a small batch, one pack and its index for a larger one
// (see Store), both from Go. A refused delta writes nothing; an I/O failure
// removes what the call wrote.
//
// Safe for concurrent use. Close ends the cat-file processes it keeps.
type Applier struct {
	metrics *Metrics
	store   Store

	mu   sync.Mutex
	cats map[string]*catEntry // repo dir -> long-lived reader
}

type catEntry struct {
	c     *git.CatFile
	users int // calls using c now; only an unused reader is closed
}

// maxCatFiles bounds the idle cat-file processes an Applier keeps; past it
// the idle ones are closed and started again on use.
const maxCatFiles = 64

// Store is how an Applier writes objects.
type Store int

const (
	// StoreAuto (the default) writes loose objects for a batch of fewer
	// than packThreshold objects and a pack for a larger one.
	StoreAuto Store = iota
	// StoreLoose writes loose objects from Go (no process), fsyncing them
	// concurrently: no pack piles up between gc runs.
	StoreLoose
	// StorePack writes one pack and its index per batch from Go (no
	// process; two files and three fsyncs whatever the batch size).
	StorePack

	// storeIndexPack writes one pack per batch through `git index-pack
	// --strict`, the former StorePack: kept only for BenchmarkApply.
	storeIndexPack Store = 100
)

// packThreshold is the batch size, in objects, from which StoreAuto writes
// a pack. Measured (BenchmarkWriteObjects, ext4, 2 shared cores; medians of
// noisy runs): loose costs about 1.5 ms for 1 object, 5-10 ms for 4, 13 ms
// for 8, 45 ms for 64 (a file, an inode and an fsync each, even
// concurrent); a pack written from Go costs 2-4 ms from 1 to 32 objects
// and 4-11 ms for 64 (two files, three fsyncs). A pack is cheaper from 2
// objects on, but every pack is one more index each object lookup may
// search until the next repack, so small batches stay loose.
const packThreshold = 8

func (s Store) String() string {
	switch s {
	case StoreLoose:
		return "loose"
	case StorePack:
		return "pack"
	case storeIndexPack:
		return "indexpack"
	}
	return "auto"
}

// NewApplier returns an applier writing with StoreAuto; m may be nil.
func NewApplier(m *Metrics) *Applier {
	return NewApplierStore(m, StoreAuto)
}

// NewApplierStore returns an applier writing with store; m may be nil.
func NewApplierStore(m *Metrics, store Store) *Applier {
	return &Applier{metrics: m, store: store, cats: map[string]*catEntry{}}
}

// Close ends every process the applier started. Call it after the last
// Apply has returned.
func (a *Applier) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for dir, e := range a.cats {
		errs = append(errs, e.c.Close())
		delete(a.cats, dir)
	}
	return errors.Join(errs...)
}

// catFile returns the reader of the repository at dir and a function to
// call when done with it.
func (a *Applier) catFile(dir string) (*git.CatFile, func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.cats[dir]
	if !ok {
		if len(a.cats) >= maxCatFiles {
			for d, old := range a.cats {
				if old.users == 0 {
					_ = old.c.Close()
					delete(a.cats, d)
				}
			}
		}
		e = &catEntry{c: git.NewCatFile(dir)}
		a.cats[dir] = e
	}
	e.users++
	return e.c, func() {
		a.mu.Lock()
		e.users--
		a.mu.Unlock()
	}
}

// Apply writes one delta's objects into the bare repository at repoDir.
func (a *Applier) Apply(ctx context.Context, repoDir string, d Delta) error {
	return a.ApplyBatch(ctx, repoDir, []Delta{d})[0]
}

// ApplyBatch writes the objects of deltas of one repository with one round
// of fsyncs (group commit) and returns one result per delta: nil, a
// *BadHashError, an ErrBadObject, a *MissingError, or an I/O error. A
// delta may use objects of an earlier delta of the batch that succeeded.
func (a *Applier) ApplyBatch(ctx context.Context, repoDir string, ds []Delta) []error {
	start := time.Now()
	defer func() { a.metrics.observeApply(time.Since(start)) }()
	errs := make([]error, len(ds))
	objDir := filepath.Join(repoDir, "objects")
	if _, err := os.Stat(objDir); err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("apply delta: %w", err)
		}
		return errs
	}
	cat, release := a.catFile(repoDir)
	defer release()
	// Every object is verified once, and the repository is asked about
	// every id the batch names in one pipelined exchange, not one round
	// trip each.
	verified := make([][]verifiedObject, len(ds))
	carried := map[string]bool{} // objects some delta of the batch carries
	for _, d := range ds {
		for _, o := range d.Objects {
			carried[o.ID] = true
		}
	}
	var ask []string
	asked := map[string]bool{}
	name := func(id string) {
		if !asked[id] && !carried[id] && git.IsID(id) && id != refmove.ZeroID && id != emptyTree {
			asked[id] = true
			ask = append(ask, id)
		}
	}
	for i, d := range ds {
		verified[i] = make([]verifiedObject, len(d.Objects))
		for k, o := range d.Objects {
			links, err := Verify(o)
			verified[i][k] = verifiedObject{links, err}
			for _, id := range links {
				name(id)
			}
		}
		for _, u := range d.Updates {
			name(u.New)
		}
	}
	present := map[string]bool{} // answers from the repository, this call
	if len(ask) > 0 {
		infos, err := cat.Infos(ctx, ask)
		if err != nil {
			for i := range errs {
				errs[i] = fmt.Errorf("apply delta: look up %d objects: %w", len(ask), err)
			}
			return errs
		}
		for k, in := range infos {
			present[ask[k]] = !in.Missing
		}
	}
	has := func(id string) (bool, error) {
		if v, ok := present[id]; ok {
			return v, nil
		}
		ok, err := hasObject(ctx, cat, objDir, id)
		if err != nil {
			return false, err
		}
		present[id] = ok
		return ok, nil
	}
	pending := map[string]bool{} // accepted in this batch, to write
	var toWrite []Object
	var accepted []int
	for i, d := range ds {
		objs, err := check(d, verified[i], pending, has)
		if err != nil {
			errs[i] = fmt.Errorf("apply delta %s of %q: %w", d.Txn, d.Project, err)
			continue
		}
		for _, o := range objs {
			pending[o.ID] = true
		}
		toWrite = append(toWrite, objs...)
		accepted = append(accepted, i)
	}
	write := writeLoose
	switch {
	case a.store == storeIndexPack:
		write = func(_ string, objs []Object) error { return writeIndexPack(ctx, repoDir, objs) }
	case a.store == StorePack, a.store == StoreAuto && len(toWrite) >= packThreshold:
		write = writePack
	}
	if err := write(objDir, toWrite); err != nil {
		for _, i := range accepted {
			errs[i] = fmt.Errorf("apply delta %s of %q: %w", ds[i].Txn, ds[i].Project, err)
		}
	}
	return errs
}

// verifiedObject is Verify's answer for one object of a delta.
type verifiedObject struct {
	links []string
	err   error
}

// check verifies one delta, whose objects Verify answered for in
// verified, against the repository and the objects accepted so far, and
// returns the objects it must write (those not yet present).
func check(d Delta, verified []verifiedObject, pending map[string]bool, has func(string) (bool, error)) ([]Object, error) {
	inDelta := make(map[string]bool, len(d.Objects))
	var need []string
	for k, o := range d.Objects {
		if err := verified[k].err; err != nil {
			return nil, err
		}
		inDelta[o.ID] = true
		need = append(need, verified[k].links...)
	}
	for _, u := range d.Updates {
		if err := checkRef(u.Ref); err != nil {
			return nil, err
		}
		if !git.IsID(u.Old) || !git.IsID(u.New) {
			return nil, fmt.Errorf("ref %s: invalid update %q -> %q", u.Ref, u.Old, u.New)
		}
		if u.New != refmove.ZeroID {
			need = append(need, u.New)
		}
	}
	missingSet := map[string]bool{}
	objs := d.Objects
	for _, id := range need {
		if inDelta[id] || pending[id] || missingSet[id] {
			continue
		}
		ok, err := has(id)
		if err != nil {
			return nil, err
		}
		switch {
		case ok:
		case id == emptyTree:
			// Referred to but not stored here (git answers for it anyway,
			// fsck does not): store it, it needs no sender.
			inDelta[id] = true
			objs = append([]Object{{Type: Tree, ID: emptyTree, Data: []byte{}}}, objs...)
		default:
			missingSet[id] = true
		}
	}
	if len(missingSet) > 0 {
		ids := make([]string, 0, len(missingSet))
		for id := range missingSet {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return nil, &MissingError{IDs: ids}
	}
	var out []Object
	written := map[string]bool{}
	for _, o := range objs {
		// Not asked whether the repository has it: a new object nearly
		// never is there, and each miss makes git rescan its packs. A
		// duplicate costs a few bytes until gc.
		if pending[o.ID] || written[o.ID] {
			continue
		}
		written[o.ID] = true
		out = append(out, o)
	}
	return out, nil
}

// emptyTree is answered by git even where it is not stored, so only its
// loose file counts as present: a peer stores it so fsck finds it.
const emptyTree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

func loosePath(objDir, id string) string { return filepath.Join(objDir, id[:2], id[2:]) }

// hasObject reports whether the repository stores id: a loose file, or
// (asked of the long-lived cat-file) in a pack or an alternate.
func hasObject(ctx context.Context, cat *git.CatFile, objDir, id string) (bool, error) {
	if _, err := os.Stat(loosePath(objDir, id)); err == nil {
		return true, nil
	}
	if id == emptyTree {
		return false, nil
	}
	_, _, err := cat.Info(ctx, id)
	if errors.Is(err, git.ErrObjectMissing) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", id, err)
	}
	return true, nil
}

// syncParallel bounds the files written and fsynced at once. Concurrent
// fsyncs let the file system commit them in one journal transaction (a
// batch of 64 updates costs a few fsync latencies, not 150); more than this
// gains nothing on one disk and only holds file descriptors.
const syncParallel = 32

// writeLoose stores objs as loose objects, durably: every file is written
// and fsynced under a temporary name (concurrently), then renamed into
// place, then every directory touched is fsynced. On error it removes what
// it created.
func writeLoose(objDir string, objs []Object) (err error) {
	if len(objs) == 0 {
		return nil
	}
	var finals, newDirs []string
	temps := make([]string, len(objs))
	defer func() {
		if err == nil {
			return
		}
		for _, p := range temps {
			if p != "" {
				_ = os.Remove(p)
			}
		}
		for _, p := range finals {
			_ = os.Remove(p)
		}
		for _, d := range newDirs {
			_ = os.Remove(d) // only if empty
		}
	}()
	dirs := map[string]bool{}
	var dirList []string
	for _, o := range objs {
		dir := filepath.Join(objDir, o.ID[:2])
		if dirs[dir] {
			continue
		}
		dirs[dir] = true
		dirList = append(dirList, dir)
		if err := os.Mkdir(dir, 0o755); err == nil {
			newDirs = append(newDirs, dir)
		} else if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("write object %s: %w", o.ID, err)
		}
	}
	// Compress every object first, with one compressor, into one buffer:
	// the goroutines below only wait on the disk.
	var zbuf bytes.Buffer
	ends := make([]int, len(objs))
	z := getZlib(&zbuf)
	for i, o := range objs {
		z.Reset(&zbuf)
		z.Write(header(o.Type, len(o.Data))) // a bytes.Buffer does not fail
		z.Write(o.Data)
		z.Close()
		ends[i] = zbuf.Len()
	}
	putZlib(z)
	var g errgroup.Group
	g.SetLimit(syncParallel)
	for i, o := range objs {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		data := zbuf.Bytes()[start:ends[i]]
		g.Go(func() error {
			name, err := writeSynced(filepath.Join(objDir, o.ID[:2]), "tmp_obj_", data)
			temps[i] = name // each goroutine writes its own slot
			if err != nil {
				return fmt.Errorf("write object %s: %w", o.ID, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, o := range objs {
		to := loosePath(objDir, o.ID)
		if _, err := os.Stat(to); err == nil {
			continue // another writer stored it meanwhile: same bytes
		}
		if err := os.Rename(temps[i], to); err != nil {
			return fmt.Errorf("store object %s: %w", o.ID, err)
		}
		temps[i] = ""
		finals = append(finals, to)
	}
	for _, p := range temps {
		if p != "" {
			_ = os.Remove(p) // left only where the object already existed
		}
	}
	for _, dir := range dirList {
		g.Go(func() error {
			if err := git.Fsync(dir); err != nil {
				return fmt.Errorf("sync %s: %w", dir, err)
			}
			return nil
		})
	}
	if len(newDirs) > 0 {
		g.Go(func() error {
			if err := git.Fsync(objDir); err != nil {
				return fmt.Errorf("sync %s: %w", objDir, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// writeIndexPack stores objs as one pack through index-pack, which checks
// every object again and writes the pack and its index durably: the former
// pack path, kept for BenchmarkApply.
func writeIndexPack(ctx context.Context, repoDir string, objs []Object) error {
	if len(objs) == 0 {
		return nil
	}
	pack, _, err := packOf(objs)
	if err != nil {
		return err
	}
	if _, err := git.IndexPack(ctx, repoDir, bytes.NewReader(pack), git.IndexPackOptions{}); err != nil {
		return fmt.Errorf("store %d objects: %w", len(objs), err)
	}
	return nil
}

// zlibFree holds idle compressors for loose objects. Each holds
// about a megabyte of tables, far more than the objects of a delta; unlike
// a sync.Pool, which every GC empties (under load, a new compressor per
// batch), the free list keeps them across GCs, bounded by its capacity.
var zlibFree = make(chan *zlib.Writer, zlibFreeMax)

// zlibFreeMax bounds the idle compressors kept: writeLoose uses one per
// call, so a few cover the batches applied at once.
const zlibFreeMax = 8

// getZlib returns a compressor writing to w. Objects favour speed, as
// git's core.looseCompression does; klauspost/compress builds the Huffman
// codes of a small object about twice as fast as compress/flate. (Packs
// store their objects uncompressed: see packOf.)
func getZlib(w io.Writer) *zlib.Writer {
	select {
	case z := <-zlibFree:
		z.Reset(w)
		return z
	default:
		z, _ := zlib.NewWriterLevel(w, zlib.BestSpeed)
		return z
	}
}

// putZlib gives z back to the free list, or drops it when the list is full.
func putZlib(z *zlib.Writer) {
	z.Reset(io.Discard) // do not keep the caller's buffer alive
	select {
	case zlibFree <- z:
	default:
	}
}
