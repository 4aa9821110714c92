package git

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrBadName is returned for a project name that cannot name a repository.
var ErrBadName = errors.New("invalid project name")

// ErrNotFound is returned when a project has no repository under the root.
var ErrNotFound = errors.New("repository not found")

// Limits on project names. They are far above what hosting sites use and
// keep every resolved path well inside PATH_MAX.
const (
	maxNameLen    = 1024
	maxSegmentLen = 255
)

// NameError says why a project name was refused.
type NameError struct {
	Name   string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("invalid project name %q: %s", e.Name, e.Reason)
}

func (e *NameError) Is(target error) bool { return target == ErrBadName }

// ValidateName checks a project name: one or more '/'-separated segments of
// printable characters (no control characters, no invisible ones: see
// invisible), none empty, none "." or "..", none starting with '.'
// or '-' (git would take it for an option) and none ending in ".git", which
// would nest one repository's directory inside another's path.
func ValidateName(name string) error {
	bad := func(reason string) error { return &NameError{Name: name, Reason: reason} }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > maxNameLen:
		return bad(fmt.Sprintf("longer than %d bytes", maxNameLen))
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	case strings.HasPrefix(name, "/"):
		return bad("absolute path")
	}
	for _, r := range name {
		switch {
		case unicode.IsControl(r): // C0, DEL and C1
			return bad("control character")
		case invisible(r):
			return bad(fmt.Sprintf("invisible character %U (a bidirectional control, zero-width or other format character): a name must read as it is", r))
		case r == '\\':
			return bad("backslash")
		case r == ':' || r == '*' || r == '?' || r == '[' || r == '~' || r == '^':
			return bad(fmt.Sprintf("character %q", r))
		}
	}
	for _, seg := range strings.Split(name, "/") {
		switch {
		case seg == "":
			return bad("empty path segment")
		case seg == "." || seg == "..":
			return bad("relative path segment")
		case strings.HasPrefix(seg, "."):
			return bad("segment starts with '.'")
		case strings.HasPrefix(seg, "-"):
			return bad("segment starts with '-'")
		case strings.HasSuffix(seg, ".git"):
			return bad("segment ends in .git")
		case len(seg) > maxSegmentLen:
			return bad(fmt.Sprintf("segment longer than %d bytes", maxSegmentLen))
		}
	}
	return nil
}

// invisible reports whether r is a character a name must not hold because
// it is not seen or changes how the text around it reads: a Unicode format
// character (category Cf: the bidirectional embeddings, overrides and
// isolates U+202A–U+202E and U+2066–U+2069, the zero-width characters and
// marks U+200B–U+200F, the byte-order mark U+FEFF, the soft hyphen, ...) or
// a line or paragraph separator (U+2028, U+2029). refdb.ValidateProject
// refuses the same characters, so the API, the mesh and the refdb agree.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// Root is the directory holding the bare repositories of a site, one
// <project>.git directory per project.
type Root struct {
	dir string // absolute and free of symbolic links
}

// NewRoot returns the root for dir, which must exist.
func NewRoot(dir string) (Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Root{}, fmt.Errorf("repository root %q: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return Root{}, fmt.Errorf("repository root %q: %w", dir, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return Root{}, fmt.Errorf("repository root %q: %w", dir, err)
	}
	if !fi.IsDir() {
		return Root{}, fmt.Errorf("repository root %q: not a directory", dir)
	}
	return Root{dir: real}, nil
}

// Dir is the absolute root directory.
func (r Root) Dir() string { return r.dir }

// Path returns the repository directory of project without touching the
// disk beyond checking that no existing part of it leads outside the root
// through a symbolic link. The directory itself need not exist.
func (r Root) Path(project string) (string, error) {
	if err := ValidateName(project); err != nil {
		return "", err
	}
	p := filepath.Join(r.dir, filepath.FromSlash(project)+".git")
	// Walk down from the root: each existing component must resolve inside it.
	cur := r.dir
	for _, seg := range strings.Split(project+".git", "/") {
		cur = filepath.Join(cur, seg)
		real, err := filepath.EvalSymlinks(cur)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("resolve %q: %w", project, err)
		}
		if real != cur && !within(r.dir, real) {
			return "", &NameError{Name: project, Reason: "leads outside the repository root"}
		}
	}
	return p, nil
}

// Existing returns the directory of an existing bare repository, or an error
// wrapping ErrNotFound.
func (r Root) Existing(project string) (string, error) {
	p, err := r.Path(project)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(p, "HEAD")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%q: %w", project, ErrNotFound)
		}
		return "", fmt.Errorf("%q: %w", project, err)
	}
	return p, nil
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// List returns the projects under the root: every directory named
// <project>.git with a HEAD file, its name valid. Hidden directories (a
// repository being created) are skipped.
func (r Root) List() ([]string, error) {
	var out []string
	err := filepath.WalkDir(r.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() || p == r.dir {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(d.Name(), ".git") {
			return nil
		}
		rel, err := filepath.Rel(r.dir, p)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(filepath.ToSlash(rel), ".git")
		if _, err := os.Stat(filepath.Join(p, "HEAD")); err == nil && ValidateName(name) == nil {
			out = append(out, name)
		}
		return filepath.SkipDir
	})
	if err != nil {
		return nil, fmt.Errorf("list repositories under %s: %w", r.dir, err)
	}
	return out, nil
}

// RemoveStaleLocks removes the ref lock files (refs/**/*.lock,
// packed-refs.lock, HEAD.lock) of every repository under the root that were
// last written before `before`: locks a git process left when it was killed
// with the machine or the daemon. packed-refs.new goes too: git writes it
// under packed-refs.lock and creates it with O_EXCL, so one left behind
// fails every later rewrite of packed-refs (ref deletions, pack-refs, gc).
// Call it at start, before any git process of this site runs. It returns
// the files it removed.
func (r Root) RemoveStaleLocks(before time.Time) ([]string, error) {
	projects, err := r.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	stale := func(p string) error {
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() || !st.ModTime().Before(before) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		removed = append(removed, p)
		return nil
	}
	for _, project := range projects {
		dir := filepath.Join(r.dir, project+".git")
		for _, f := range []string{"packed-refs.lock", "packed-refs.new", "HEAD.lock"} {
			if err := stale(filepath.Join(dir, f)); err != nil {
				return removed, err
			}
		}
		err := filepath.WalkDir(filepath.Join(dir, "refs"), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				return err
			}
			if !d.IsDir() && strings.HasSuffix(d.Name(), ".lock") {
				return stale(p)
			}
			return nil
		})
		if err != nil {
			return removed, fmt.Errorf("remove stale locks in %q: %w", project, err)
		}
	}
	return removed, nil
}
