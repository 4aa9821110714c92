package notedbfast

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sitesync/sitesync/internal/git"
)

// ObjectType is a git object type, numbered as in git's pack format.
type ObjectType uint8

// The git object types.
const (
	Commit ObjectType = 1
	Tree   ObjectType = 2
	Blob   ObjectType = 3
	Tag    ObjectType = 4
)

func (t ObjectType) String() string {
	switch t {
	case Commit:
		return "commit"
	case Tree:
		return "tree"
	case Blob:
		return "blob"
	case Tag:
		return "tag"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseObjectType returns the type named s (as git cat-file prints it).
func ParseObjectType(s string) (ObjectType, error) {
	switch s {
	case "commit":
		return Commit, nil
	case "tree":
		return Tree, nil
	case "blob":
		return Blob, nil
	case "tag":
		return Tag, nil
	}
	return 0, fmt.Errorf("unknown object type %q", s)
}

func (t ObjectType) valid() bool { return t >= Commit && t <= Tag }

// Object is one git object whole: its type, its id (40 hex digits) and its
// content without git's "type size\0" header.
type Object struct {
	Type ObjectType
	ID   string
	Data []byte
}

// Hash returns the object id of data as an object of type t.
func Hash(t ObjectType, data []byte) string {
	h := sha1.New()
	h.Write(header(t, len(data)))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

func header(t ObjectType, n int) []byte {
	return fmt.Appendf(nil, "%s %d\x00", t, n)
}

// ErrBadHash is the outcome of an object whose content does not hash to its
// id; the error is a *BadHashError.
var ErrBadHash = errors.New("object hash mismatch")

// ErrBadObject is the outcome of an object that hashes correctly but is not
// a well-formed git object of its type (git fsck would refuse it).
var ErrBadObject = errors.New("malformed object")

// BadHashError names an object whose content hashes to Got instead of ID.
type BadHashError struct {
	ID, Got string
}

func (e *BadHashError) Error() string {
	return fmt.Sprintf("object %s: content hashes to %s", e.ID, e.Got)
}

// Is makes errors.Is(err, ErrBadHash) true.
func (e *BadHashError) Is(target error) bool { return target == ErrBadHash }

// Verify checks that o hashes to its id and is well formed, and returns the
// ids it refers to (a commit's tree and parents, a tree's entries except
// submodule commits, a tag's target), in order, without duplicates.
func Verify(o Object) ([]string, error) {
	if !o.Type.valid() {
		return nil, fmt.Errorf("object %s: %w: unknown type %d", o.ID, ErrBadObject, o.Type)
	}
	if got := Hash(o.Type, o.Data); got != o.ID {
		return nil, &BadHashError{ID: o.ID, Got: got}
	}
	links, err := Links(o.Type, o.Data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %v", o.Type, o.ID, ErrBadObject, err)
	}
	return links, nil
}

// Links parses data as an object of type t, checks it the way `git fsck
// --strict` checks headers and tree entries, and returns the ids it refers to.
func Links(t ObjectType, data []byte) ([]string, error) {
	switch t {
	case Commit:
		return commitLinks(data)
	case Tree:
		return treeLinks(data)
	case Tag:
		return tagLinks(data)
	case Blob:
		return nil, nil
	}
	return nil, fmt.Errorf("unknown type %d", t)
}

// line cuts the next "key value\n" header line off data.
func line(data []byte, key string) (value string, rest []byte, ok bool) {
	if !bytes.HasPrefix(data, []byte(key+" ")) {
		return "", data, false
	}
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return "", data, false
	}
	return string(data[len(key)+1 : i]), data[i+1:], true
}

func commitLinks(data []byte) ([]string, error) {
	tree, rest, ok := line(data, "tree")
	if !ok || !git.IsID(tree) {
		return nil, errors.New("bad tree line")
	}
	links := []string{tree}
	seen := map[string]bool{}
	for {
		p, r, ok := line(rest, "parent")
		if !ok {
			break
		}
		if !git.IsID(p) {
			return nil, errors.New("bad parent line")
		}
		if !seen[p] {
			seen[p] = true
			links = append(links, p)
		}
		rest = r
	}
	for _, key := range []string{"author", "committer"} {
		id, r, ok := line(rest, key)
		if !ok {
			return nil, fmt.Errorf("missing %s line", key)
		}
		if err := checkIdent(id); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		rest = r
	}
	if i := bytes.Index(rest, []byte("\n\n")); i >= 0 {
		rest = rest[:i]
	}
	if bytes.IndexByte(rest, 0) >= 0 {
		return nil, errors.New("NUL in header")
	}
	return links, nil
}

func tagLinks(data []byte) ([]string, error) {
	obj, rest, ok := line(data, "object")
	if !ok || !git.IsID(obj) {
		return nil, errors.New("bad object line")
	}
	typ, rest, ok := line(rest, "type")
	if !ok {
		return nil, errors.New("missing type line")
	}
	if _, err := ParseObjectType(typ); err != nil {
		return nil, err
	}
	name, rest, ok := line(rest, "tag")
	if !ok || name == "" {
		return nil, errors.New("missing tag line")
	}
	if id, _, ok := line(rest, "tagger"); ok {
		if err := checkIdent(id); err != nil {
			return nil, fmt.Errorf("tagger: %w", err)
		}
	}
	return []string{obj}, nil
}

// checkIdent checks "Name <email> 1234567890 +0000" as fsck does.
func checkIdent(s string) error {
	lt := strings.IndexByte(s, '<')
	gt := strings.IndexByte(s, '>')
	switch {
	case lt < 0 || gt < lt:
		return errors.New("bad email")
	case lt > 0 && s[lt-1] != ' ':
		return errors.New("missing space before email")
	case strings.ContainsAny(s[:lt], "<>") || strings.ContainsAny(s[lt+1:gt], "<>\n"):
		return errors.New("bad name or email")
	}
	rest := s[gt+1:]
	date, tz, ok := strings.Cut(strings.TrimPrefix(rest, " "), " ")
	if !strings.HasPrefix(rest, " ") || !ok {
		return errors.New("missing date")
	}
	if date == "" || (len(date) > 1 && date[0] == '0') || strings.Trim(date, "0123456789") != "" {
		return errors.New("bad date")
	}
	if _, err := strconv.ParseUint(date, 10, 64); err != nil {
		return errors.New("bad date")
	}
	if len(tz) != 5 || (tz[0] != '+' && tz[0] != '-') || strings.Trim(tz[1:], "0123456789") != "" {
		return errors.New("bad time zone")
	}
	return nil
}

func treeLinks(data []byte) ([]string, error) {
	var links []string
	var prevName string
	var prevDir bool
	first := true
	seen := map[string]bool{}
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		if sp < 0 {
			return nil, errors.New("truncated tree entry")
		}
		mode := string(data[:sp])
		data = data[sp+1:]
		nul := bytes.IndexByte(data, 0)
		if nul < 0 || len(data) < nul+21 {
			return nil, errors.New("truncated tree entry")
		}
		name := string(data[:nul])
		id := hex.EncodeToString(data[nul+1 : nul+21])
		data = data[nul+21:]
		var dir, gitlink bool
		switch mode {
		case "100644", "100755", "120000":
		case "40000":
			dir = true
		case "160000":
			gitlink = true
		default:
			return nil, fmt.Errorf("bad mode %q", mode)
		}
		switch {
		case name == "" || strings.ContainsRune(name, '/'):
			return nil, fmt.Errorf("bad entry name %q", name)
		case name == "." || name == ".." || strings.EqualFold(name, ".git"):
			return nil, fmt.Errorf("forbidden entry name %q", name)
		}
		if !first && (name == prevName || compareEntries(prevName, prevDir, name, dir) >= 0) {
			return nil, fmt.Errorf("entries out of order at %q", name)
		}
		first, prevName, prevDir = false, name, dir
		if !gitlink && !seen[id] {
			seen[id] = true
			links = append(links, id)
		}
	}
	return links, nil
}

// compareEntries orders tree entries as git does: a directory sorts as if
// its name ended in '/'.
func compareEntries(a string, aDir bool, b string, bDir bool) int {
	if aDir {
		a += "/"
	}
	if bDir {
		b += "/"
	}
	return strings.Compare(a, b)
}

func indexByte(b []byte, c byte) int { return bytes.IndexByte(b, c) }

func hexID(b []byte) string { return hex.EncodeToString(b) }
