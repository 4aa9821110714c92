package git

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Create makes the bare repository of project under the root. It reports
// created=false, with no error, when the repository already exists. The
// repository is initialised in a temporary directory beside its final place
// and renamed into it, so a concurrent reader never sees half a repository and
// two concurrent creators cannot both win.
func (r Root) Create(ctx context.Context, project string) (created bool, err error) {
	return r.CreateWithHead(ctx, project, "")
}

// CreateWithHead is Create with HEAD pointing at head ("" : git's default).
func (r Root) CreateWithHead(ctx context.Context, project, head string) (created bool, err error) {
	p, err := r.Path(project)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(p, "HEAD")); err == nil {
		return false, nil
	}
	parent := filepath.Dir(p)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return false, fmt.Errorf("create %q: %w", project, err)
	}
	// Re-check after MkdirAll: a symbolic link may have appeared on the way.
	if _, err := r.Path(project); err != nil {
		return false, err
	}
	tmp, err := os.MkdirTemp(parent, ".create-*")
	if err != nil {
		return false, fmt.Errorf("create %q: %w", project, err)
	}
	defer os.RemoveAll(tmp) // a no-op after a successful rename
	if err := run(ctx, tmp, nil, nil, nil, "init", "--quiet", "--bare", tmp); err != nil {
		return false, fmt.Errorf("create %q: %w", project, err)
	}
	// Nothing from the network is trusted: receive-pack checks every object
	// it takes from a client.
	if err := run(ctx, tmp, nil, nil, nil, "config", "receive.fsckObjects", "true"); err != nil {
		return false, fmt.Errorf("create %q: %w", project, err)
	}
	// sitesync's own refs (HeadRef) are neither shown to clients nor
	// pushed by them.
	for _, key := range []string{"uploadpack.hideRefs", "receive.hideRefs"} {
		if err := run(ctx, tmp, nil, nil, nil, "config", "--add", key, strings.TrimSuffix(ReservedRefs, "/")); err != nil {
			return false, fmt.Errorf("create %q: %w", project, err)
		}
	}
	if head != "" {
		if err := run(ctx, tmp, nil, nil, nil, "symbolic-ref", "HEAD", head); err != nil {
			return false, fmt.Errorf("create %q: HEAD %s: %w", project, head, err)
		}
	}
	if err := os.Rename(tmp, p); err != nil {
		if _, statErr := os.Stat(filepath.Join(p, "HEAD")); statErr == nil {
			return false, nil // another creator won the race
		}
		return false, fmt.Errorf("create %q: %w", project, err)
	}
	if err := Fsync(parent); err != nil {
		return true, fmt.Errorf("create %q: %w", project, err)
	}
	return true, nil
}

// Fsync makes a file or directory durable (a directory: its entries).
func Fsync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// SetConfig sets a configuration value in the repository at dir.
func SetConfig(ctx context.Context, dir, key, value string) error {
	return run(ctx, dir, nil, nil, nil, "config", key, value)
}
