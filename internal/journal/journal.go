package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/txn"
)

// maxEntry bounds an entry file read back at recovery; an entry is the ref
// updates of one write.
const maxEntry = 64 << 20

// Update is one ref move of a prepared transaction.
type Update struct {
	Ref string `json:"ref"`
	Old string `json:"old,omitempty"`
	New string `json:"new"`
	// Version is the refdb version of New, once decided.
	Version uint64 `json:"version,omitempty"`
}

// Entry is a prepared transaction.
type Entry struct {
	Txn      string    `json:"txn"`
	Project  string    `json:"project"`
	Origin   string    `json:"origin"` // the site the write came from
	Updates  []Update  `json:"updates"`
	Peers    []string  `json:"peers,omitempty"` // sites still to be told (outbound queue)
	Prepared time.Time `json:"prepared"`
	Deadline time.Time `json:"deadline"` // abort after this unless the refdb names the txn
}

// Journal is a directory of entries.
type Journal struct {
	dir string

	mu sync.Mutex
	// written holds a copy of every entry this process put and has not
	// removed, so that Get need not read back and parse what it wrote.
	// The directory belongs to one process: the file holds the same.
	written map[string]Entry
}

// Open uses dir, creating it if needed.
func Open(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return &Journal{dir: dir, written: map[string]Entry{}}, nil
}

// Put writes e durably, replacing an entry of the same transaction: it
// returns after the entry and the directory are fsynced.
func (j *Journal) Put(e Entry) error { return j.put(e, true) }

// PutVolatile writes e like Put but does not fsync the directory: after a
// power failure the entry may be the previous one or absent, never torn
// (its content is fsynced before the rename). For entries whose loss
// costs only time: a peer's prepared NoteDb batch, whose objects are in
// the object store already and whose refs catch-up from the refdb moves
// anyway, and an outbound entry's remaining peers.
func (j *Journal) PutVolatile(e Entry) error { return j.put(e, false) }

func (j *Journal) put(e Entry, durable bool) error {
	if err := txn.Check(e.Txn); err != nil {
		return err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("journal %s: %w", e.Txn, err)
	}
	f, err := os.CreateTemp(j.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("journal %s: %w", e.Txn, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly after the rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("journal %s: %w", e.Txn, err)
	}
	// Always: a file renamed into place before its content is on disk can
	// come back empty after a power failure, an entry nobody can read.
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("journal %s: %w", e.Txn, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("journal %s: %w", e.Txn, err)
	}
	// Under the lock, so that the copy kept and the file agree whatever
	// Put or Remove of the same transaction runs meanwhile.
	j.mu.Lock()
	err = os.Rename(tmp, j.path(e.Txn))
	if err == nil {
		j.written[e.Txn] = clone(e)
	} else {
		delete(j.written, e.Txn) // the file may be the old entry or none
	}
	j.mu.Unlock()
	if err != nil {
		return fmt.Errorf("journal %s: %w", e.Txn, err)
	}
	if !durable {
		return nil
	}
	return j.syncDir()
}

// clone copies e's slices, so that neither the caller's later changes nor
// a reader's reach the copy the journal keeps.
func clone(e Entry) Entry {
	e.Updates = slices.Clone(e.Updates)
	e.Peers = slices.Clone(e.Peers)
	return e
}

// Get reads the entry of transaction id; os.ErrNotExist when there is none.
func (j *Journal) Get(id string) (Entry, error) {
	if err := txn.Check(id); err != nil {
		return Entry{}, err
	}
	j.mu.Lock()
	e, ok := j.written[id]
	j.mu.Unlock()
	if ok {
		return clone(e), nil
	}
	return j.read(j.path(id))
}

// Remove deletes the entry of transaction id. It does not fsync: after a
// power failure a removed entry may be back, and is resolved (or
// delivered) once more, which every user of a journal tolerates. Removing
// an absent entry is not an error: resolution may run twice after a crash.
func (j *Journal) Remove(id string) error {
	if err := txn.Check(id); err != nil {
		return err
	}
	j.mu.Lock()
	delete(j.written, id)
	err := os.Remove(j.path(id))
	j.mu.Unlock()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal %s: %w", id, err)
	}
	return nil
}

// List returns every entry, oldest prepare first. An unreadable entry is
// reported in the error alongside the readable ones, never dropped
// silently: it is a prepared transaction someone must resolve.
func (j *Journal) List() ([]Entry, error) {
	names, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("list journal: %w", err)
	}
	var out []Entry
	var errs []error
	for _, n := range names {
		if !strings.HasSuffix(n.Name(), ".json") {
			continue
		}
		e, err := j.read(filepath.Join(j.dir, n.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, e)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Prepared.Before(out[b].Prepared) })
	return out, errors.Join(errs...)
}

func (j *Journal) read(p string) (Entry, error) {
	f, err := os.Open(p)
	if err != nil {
		return Entry{}, fmt.Errorf("journal entry %s: %w", filepath.Base(p), err)
	}
	defer f.Close()
	var e Entry
	dec := json.NewDecoder(&limitReader{f: f, left: maxEntry})
	if err := dec.Decode(&e); err != nil {
		return Entry{}, fmt.Errorf("journal entry %s: %w", filepath.Base(p), err)
	}
	if want := strings.TrimSuffix(filepath.Base(p), ".json"); e.Txn != want {
		return Entry{}, fmt.Errorf("journal entry %s names transaction %q", filepath.Base(p), e.Txn)
	}
	return e, nil
}

func (j *Journal) path(txn string) string { return filepath.Join(j.dir, txn+".json") }

func (j *Journal) syncDir() error {
	if err := git.Fsync(j.dir); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	return nil
}

type limitReader struct {
	f    *os.File
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("entry larger than %d bytes", maxEntry)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.f.Read(p)
	l.left -= int64(n)
	return n, err
}
