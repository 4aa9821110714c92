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
	// Ref names hold no space (check-ref-format), so the three fields
	// split on the first two; %(symref) is empty for a direct ref.
	out, err := output(ctx, dir, "for-each-ref", "--format=%(objectname) %(refname) %(symref)")
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
		if len(f[2]) > 0 {
			continue
		}
		refs[string(f[1])] = string(f[0])
	}
	return refs, nil
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
