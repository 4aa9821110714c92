package git

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Create makes the bare repository of project under the root. It reports
// created=false, with no error, when the repository already exists. The
// repository is initialised in a temporary directory beside its final place
// and renamed into it, so a concurrent reader never sees half a repository and
// two concurrent creators cannot both win.
func (r Root) Create(ctx context.Context, project string) (created bool, err error) {
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
