package git

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// ListDirectRefs is ListRefs of every ref without the symbolic ones (a
// mirror's refs/remotes/origin/HEAD): the refs that hold an object name of
// their own, which is what a ref database can guard.
func ListDirectRefs(ctx context.Context, dir string) (map[string]string, error) {
	return forEachRef(ctx, dir, "", true)
}

// CheckComplete makes sure every object reachable from tips is in the
// repository at dir: git rev-list --objects walks them all and fails,
// naming the object, at the first that is missing or unreadable. Its cost
// is the size of the history, so it is for one-off checks (an import),
// never for a write.
func CheckComplete(ctx context.Context, dir string, tips []string) error {
	if len(tips) == 0 {
		return nil
	}
	var in bytes.Buffer
	for _, id := range tips {
		if !IsID(id) {
			return fmt.Errorf("invalid object id %q", id)
		}
		in.WriteString(id)
		in.WriteByte('\n')
	}
	return run(ctx, dir, nil, &in, io.Discard, "rev-list", "--objects", "--quiet", "--stdin")
}
