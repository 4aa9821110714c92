package notedbfast

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/klauspost/compress/zlib"
	"golang.org/x/sync/errgroup"

	"github.com/sitesync/sitesync/internal/git"
)

// packEntry is where one object lies in a pack, as the index records it.
type packEntry struct {
	id     [sha1.Size]byte
	offset int64  // of the object's header in the pack
	crc    uint32 // CRC-32 of the object's packed bytes (header and zlib data)
}

// maxPackOffset is the largest offset an index v2 stores in its 4-byte
// table; a larger one needs the 8-byte table, which a batch (at most a few
// MiB) never needs, so writePack refuses such a pack instead.
const maxPackOffset = math.MaxInt32

// packOf returns a version 2 pack of objs, without deltas, and where each
// object lies in it (in the order of objs).
func packOf(objs []Object) ([]byte, []packEntry, error) {
	var b bytes.Buffer
	b.WriteString("PACK")
	var word [4]byte
	binary.BigEndian.PutUint32(word[:], 2)
	b.Write(word[:])
	binary.BigEndian.PutUint32(word[:], uint32(len(objs)))
	b.Write(word[:])
	entries := make([]packEntry, len(objs))
	var hdr [10]byte
	// Stored, not compressed: deflating each small object costs ~18 µs
	// (building its Huffman codes), most of the CPU of applying a batch,
	// and the next gc or repack compresses the pack anyway. A stored pack
	// is ~2.5× the compressed one until then.
	z, err := zlib.NewWriterLevel(&b, zlib.NoCompression)
	if err != nil {
		return nil, nil, err
	}
	for i, o := range objs {
		e := &entries[i]
		if _, err := hex.Decode(e.id[:], []byte(o.ID)); err != nil || len(o.ID) != 2*sha1.Size {
			return nil, nil, fmt.Errorf("pack object %q: invalid id", o.ID)
		}
		e.offset = int64(b.Len())
		b.Write(git.AppendObjectHeader(hdr[:0], byte(o.Type), len(o.Data)))
		z.Reset(&b)
		z.Write(o.Data) // a bytes.Buffer does not fail
		z.Close()
		e.crc = crc32.ChecksumIEEE(b.Bytes()[e.offset:])
	}
	if b.Len() > maxPackOffset {
		return nil, nil, fmt.Errorf("pack of %d objects: %d bytes exceeds 2 GiB", len(objs), b.Len())
	}
	sum := sha1.Sum(b.Bytes())
	b.Write(sum[:])
	return b.Bytes(), entries, nil
}

// idxOf returns the version 2 index of a pack whose objects are entries and
// whose trailing checksum is packSum: what `git index-pack` writes for it,
// byte for byte. It sorts entries by id. Every offset must be at most
// maxPackOffset (packOf ensures it).
func idxOf(entries []packEntry, packSum []byte) []byte {
	slices.SortFunc(entries, func(a, b packEntry) int { return bytes.Compare(a.id[:], b.id[:]) })
	n := len(entries)
	out := make([]byte, 0, 8+256*4+n*(sha1.Size+4+4)+2*sha1.Size)
	out = append(out, 0xff, 't', 'O', 'c', 0, 0, 0, 2)
	var fanout [256]uint32
	for _, e := range entries {
		fanout[e.id[0]]++
	}
	var total uint32
	for _, c := range fanout {
		total += c
		out = binary.BigEndian.AppendUint32(out, total)
	}
	for _, e := range entries {
		out = append(out, e.id[:]...)
	}
	for _, e := range entries {
		out = binary.BigEndian.AppendUint32(out, e.crc)
	}
	for _, e := range entries {
		out = binary.BigEndian.AppendUint32(out, uint32(e.offset))
	}
	out = append(out, packSum...)
	sum := sha1.Sum(out)
	return append(out, sum[:]...)
}

// writePack stores objs as one pack and its index, written from Go: no
// process, two files and three fsyncs whatever the batch size.
//
// It does not check the objects as `git index-pack --strict` would: Apply
// wrote them only after check() (Verify: every hash, the form of every
// object, every link present) accepted them, so index-pack's second pass
// (inflate, hash, fsck) would only repeat it.
//
// The install is git's: the pack and its index are written and fsynced as
// objects/pack/tmp_pack_* and tmp_idx_*, then linked as
// pack-<checksum>.pack first and .idx last (the index is what makes a pack
// visible to git), then objects/pack is fsynced. A pack or index already
// there under that name holds the same objects (the name is the checksum
// of the pack) and is kept. Git 2.39 reads a pack without a .rev file. On
// error writePack removes what it created.
func writePack(objDir string, objs []Object) (err error) {
	if len(objs) == 0 {
		return nil
	}
	objs = uniqueObjects(objs)
	pack, entries, err := packOf(objs)
	if err != nil {
		return err
	}
	packSum := pack[len(pack)-sha1.Size:]
	idx := idxOf(entries, packSum)
	dir := filepath.Join(objDir, "pack")
	base := filepath.Join(dir, "pack-"+hex.EncodeToString(packSum))

	var created []string
	defer func() {
		if err != nil {
			// The index first: a pack without one is invisible to git.
			for _, p := range slices.Backward(created) {
				_ = os.Remove(p)
			}
		}
	}()
	var tmps [2]string
	var g errgroup.Group
	for i, data := range [][]byte{pack, idx} {
		prefix := [...]string{"tmp_pack_", "tmp_idx_"}[i]
		g.Go(func() error {
			name, err := writeSynced(dir, prefix, data)
			tmps[i] = name // each goroutine writes its own slot
			return err
		})
	}
	err = g.Wait()
	for _, p := range tmps {
		if p != "" {
			created = append(created, p)
		}
	}
	if err != nil {
		return fmt.Errorf("store %d objects: %w", len(objs), err)
	}
	for i, ext := range []string{".pack", ".idx"} {
		final := base + ext
		switch err := linkFile(tmps[i], final); {
		case err == nil:
			created = append(created, final)
		case errors.Is(err, os.ErrExist):
			// The same pack, from an earlier or concurrent write: keep it.
		default:
			return fmt.Errorf("store %d objects: %w", len(objs), err)
		}
	}
	for _, p := range tmps {
		_ = os.Remove(p) // the final names hold the data
	}
	created = slices.DeleteFunc(created, func(p string) bool { return p == tmps[0] || p == tmps[1] })
	if err := git.Fsync(dir); err != nil {
		return fmt.Errorf("store %d objects: sync %s: %w", len(objs), dir, err)
	}
	return nil
}

// linkFile gives a written file its final name; a test replaces it to fail
// between the two names.
var linkFile = os.Link

// uniqueObjects returns objs without repeated ids (a pack holds an object
// once); objs itself when it has none.
func uniqueObjects(objs []Object) []Object {
	seen := make(map[string]bool, len(objs))
	var out []Object // nil until a repeat is found
	for i, o := range objs {
		if seen[o.ID] {
			if out == nil {
				out = slices.Clone(objs[:i])
			}
			continue
		}
		seen[o.ID] = true
		if out != nil {
			out = append(out, o)
		}
	}
	if out == nil {
		return objs
	}
	return out
}

// writeSynced writes data to a new read-only file dir/prefix<random> and
// fsyncs it, and returns its name ("" when nothing was created).
func writeSynced(dir, prefix string, data []byte) (string, error) {
	f, err := createTemp(dir, prefix)
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}

// createTemp creates a new file dir/prefix<random>, read-only from the
// start as git's objects are (one system call fewer than os.CreateTemp and
// a chmod), and opened for writing.
func createTemp(dir, prefix string) (*os.File, error) {
	for try := 0; ; try++ {
		name := filepath.Join(dir, prefix+strconv.FormatUint(rand.Uint64()&(1<<48-1), 36))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o444)
		if errors.Is(err, os.ErrExist) && try < 10 {
			continue
		}
		return f, err
	}
}
