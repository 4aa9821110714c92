package refdb

import "context"

// pingProject is read by Ping; no real project can be affected by a read.
const pingProject = "sitesync-refdb-ping"

// Ping reports whether s answers a read, for /readyz and status pages: nil,
// or an error wrapping ErrUnavailable (or ErrClosed).
func Ping(ctx context.Context, s Store) error {
	_, err := s.Get(ctx, pingProject, "HEAD")
	return err
}
