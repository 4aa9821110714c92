package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
)

// Repo is an open repository with its long-lived git processes.
type Repo struct {
	Project string
	Dir     string
	Objects *CatFile
	Refs    *RefUpdater
}

// Repos hands out one Repo per project, so the processes of a repository are
// shared by every request that touches it. Safe for concurrent use.
type Repos struct {
	root Root
	refs RefUpdaterOptions

	mu    sync.Mutex
	open  map[string]*Repo // by project
	close bool
}

// NewRepos serves the repositories under root. env is added to the
// environment of each repository's update-ref process.
func NewRepos(root Root, env ...string) *Repos {
	return NewReposOpts(root, RefUpdaterOptions{Env: env})
}

// NewReposOpts serves the repositories under root, with refs, its Objects
// set to the repository's own CatFile, configuring each repository's
// RefUpdater.
func NewReposOpts(root Root, refs RefUpdaterOptions) *Repos {
	return &Repos{root: root, refs: refs, open: make(map[string]*Repo)}
}

// Root is the repository root served.
func (rs *Repos) Root() Root { return rs.root }

// Open returns the repository of project, which must exist (ErrNotFound
// otherwise).
//
// A project's directory is resolved (and checked to stay inside the root)
// on its first Open only: the hot paths open a repository per write.
func (rs *Repos) Open(project string) (*Repo, error) {
	rs.mu.Lock()
	r, ok := rs.open[project]
	closed := rs.close
	rs.mu.Unlock()
	if closed {
		return nil, errors.New("repositories closed")
	}
	if ok {
		return r, nil
	}
	dir, err := rs.root.Existing(project)
	if err != nil {
		return nil, err
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.close {
		return nil, errors.New("repositories closed")
	}
	if r, ok := rs.open[project]; ok {
		return r, nil
	}
	opts := rs.refs
	opts.Objects = NewCatFile(dir)
	r = &Repo{Project: project, Dir: dir, Objects: opts.Objects, Refs: NewRefUpdaterOpts(dir, opts)}
	rs.open[project] = r
	return r, nil
}

// Forget ends the processes of project's repository (before it is
// removed); a later Open starts new ones.
func (rs *Repos) Forget(project string) error {
	rs.mu.Lock()
	r, ok := rs.open[project]
	delete(rs.open, project)
	rs.mu.Unlock()
	if !ok {
		return nil
	}
	return errors.Join(r.Objects.Close(), r.Refs.Close())
}

// Close ends every process. Open fails afterwards.
func (rs *Repos) Close() error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.close = true
	var errs []error
	for name, r := range rs.open {
		errs = append(errs, r.Objects.Close(), r.Refs.Close())
		delete(rs.open, name)
	}
	return errors.Join(errs...)
}

// ListRefs returns every ref of the repository at dir under prefix (all refs
// when prefix is empty) with the object it points at.
func ListRefs(ctx context.Context, dir, prefix string) (map[string]string, error) {
	return forEachRef(ctx, dir, prefix, false)
}

// forEachRef is ListRefs, without the symbolic refs when direct is set.
func forEachRef(ctx context.Context, dir, prefix string, direct bool) (map[string]string, error) {
	// Ref names hold no space (check-ref-format), so the three fields
	// split on the first two; %(symref) is empty for a direct ref.
	args := []string{"for-each-ref", "--format=%(objectname) %(refname) %(symref)"}
	if prefix != "" {
		args = append(args, prefix)
	}
	out, err := output(ctx, dir, args...)
	if err != nil {
		return nil, err
	}
	refs := make(map[string]string)
	for _, line := range bytes.Split(out, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		f := bytes.SplitN(line, []byte{' '}, 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("git for-each-ref: unexpected line %q", line)
		}
		if direct && len(f[2]) > 0 {
			continue
		}
		refs[string(f[1])] = string(f[0])
	}
	return refs, nil
}
