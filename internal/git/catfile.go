package git

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrObjectMissing is returned for an object the repository does not have.
var ErrObjectMissing = errors.New("object missing")

// maxObjectSize bounds what Object reads into memory. Objects larger than
// this are streamed by pack-objects, never read whole by sitesync.
const maxObjectSize = 256 << 20

// Object is one git object read whole.
type Object struct {
	ID   string
	Type string // commit, tree, blob or tag
	Data []byte
}

// CatFile reads objects through one long-lived `git cat-file --batch-command`
// process. Safe for concurrent use; requests are served one at a time.
type CatFile struct{ p proc }

// NewCatFile returns a reader for the repository at dir. The process starts
// on first use.
func NewCatFile(dir string) *CatFile {
	return &CatFile{p: proc{dir: dir, args: []string{"cat-file", "--batch-command"}}}
}

// Object reads one object by id (or any revision git understands).
func (c *CatFile) Object(ctx context.Context, id string) (Object, error) {
	if err := checkRev(id); err != nil {
		return Object{}, err
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	var obj Object
	err := c.p.exchange(ctx,
		func(w *bufio.Writer) error { _, err := fmt.Fprintf(w, "contents %s\n", id); return err },
		func(r *bufio.Reader) error {
			typ, oid, size, err := readHeader(r, id)
			if err != nil {
				return err
			}
			if size > maxObjectSize {
				return fmt.Errorf("object %s is %d bytes, over the %d limit", oid, size, maxObjectSize)
			}
			data := make([]byte, size+1) // content and the trailing newline
			if _, err := io.ReadFull(r, data); err != nil {
				return fmt.Errorf("read object %s: %w", oid, err)
			}
			obj = Object{ID: oid, Type: typ, Data: data[:size]}
			return nil
		})
	if errors.Is(err, ErrObjectMissing) {
		return Object{}, fmt.Errorf("%s: %w", id, ErrObjectMissing)
	}
	return obj, err
}

// Info returns the type and size of an object without reading it.
func (c *CatFile) Info(ctx context.Context, id string) (typ string, size int64, err error) {
	infos, err := c.Infos(ctx, []string{id})
	switch {
	case err != nil:
		return "", 0, err
	case infos[0].Missing:
		return "", 0, fmt.Errorf("%s: %w", id, ErrObjectMissing)
	}
	return infos[0].Type, infos[0].Size, nil
}

// Info is what Infos answers for one name: Missing, or the object's id,
// type and size.
type Info struct {
	ID      string
	Type    string
	Size    int64
	Missing bool
}

// infoChunk and infoChunkBytes bound the requests written before their
// answers are read, so that git never blocks on a full stdout pipe while we
// still write its stdin (a pipe holds 64 KiB). An answer is under 100 bytes
// for an object, but a missing name comes back whole ("<name> missing"):
// the names' bytes count too.
const (
	infoChunk      = 256
	infoChunkBytes = 16 << 10
)

// infoChunks cuts names into the chunks Infos writes at once.
func infoChunks(names []string) [][]string {
	var out [][]string
	start, size := 0, 0
	for i, n := range names {
		if i > start && (i-start == infoChunk || size+len(n)+16 > infoChunkBytes) {
			out = append(out, names[start:i])
			start, size = i, 0
		}
		size += len(n) + 16 // "info ", the newline; " missing" or an answer's header
	}
	if start < len(names) {
		out = append(out, names[start:])
	}
	return out
}

// Infos answers, in order, for each of names (object ids or revisions such
// as full ref names) whether the repository has it and what it is, in one
// exchange per 256 names (fewer if they are long) instead of a round trip
// each.
func (c *CatFile) Infos(ctx context.Context, names []string) ([]Info, error) {
	for _, n := range names {
		if err := checkRev(n); err != nil {
			return nil, err
		}
	}
	out := make([]Info, 0, len(names))
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	for _, chunk := range infoChunks(names) {
		err := c.p.exchange(ctx,
			func(w *bufio.Writer) error {
				for _, n := range chunk {
					w.WriteString("info ")
					w.WriteString(n)
					if err := w.WriteByte('\n'); err != nil {
						return err
					}
				}
				return nil
			},
			func(r *bufio.Reader) error {
				for _, n := range chunk {
					typ, oid, size, err := readHeader(r, n)
					switch {
					case errors.Is(err, ErrObjectMissing):
						out = append(out, Info{Missing: true})
					case err != nil:
						return err
					default:
						out = append(out, Info{ID: oid, Type: typ, Size: size})
					}
				}
				return nil
			})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Close ends the process.
func (c *CatFile) Close() error { return c.p.close() }

// readHeader reads "<oid> <type> <size>" or "<name> missing". A missing
// object is an answer, not a failure of the process, which stays up.
func readHeader(r *bufio.Reader, asked string) (typ, oid string, size int64, err error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", "", 0, fmt.Errorf("read header for %s: %w", asked, err)
	}
	f := strings.Fields(line)
	if len(f) == 2 && (f[1] == "missing" || f[1] == "ambiguous") {
		return "", "", 0, missing{}
	}
	if len(f) != 3 {
		return "", "", 0, fmt.Errorf("unexpected cat-file header %q", strings.TrimSpace(line))
	}
	size, err = strconv.ParseInt(f[2], 10, 64)
	if err != nil || size < 0 {
		return "", "", 0, fmt.Errorf("unexpected cat-file header %q", strings.TrimSpace(line))
	}
	return f[1], f[0], size, nil
}

// checkRev refuses input that would break the line protocol.
func checkRev(id string) error {
	if id == "" || strings.ContainsAny(id, "\n\r\x00 ") {
		return fmt.Errorf("invalid object name %q", id)
	}
	return nil
}

// missing is the answer for an absent object: the process is still healthy.
type missing struct{}

func (missing) Error() string        { return "object missing" }
func (missing) Is(target error) bool { return target == ErrObjectMissing }
func (missing) isAnswer()            {}
