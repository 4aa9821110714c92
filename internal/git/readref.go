package git

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sitesync/sitesync/internal/refmove"
)

// RefValue is the value of the ref named exactly ref (a full name under
// refs/ that check-ref-format accepts) in the repository, refmove.ZeroID
// when there is no such ref or its object is not here.
//
// cat-file reads a revision, not a ref: a name that is not a ref may still
// answer. When refs/heads/x does not exist it tries the names git's rules
// make of it (gitrevisions(7): refs/refs/heads/x, refs/tags/refs/heads/x,
// refs/heads/refs/heads/x, refs/remotes/refs/heads/x and
// refs/remotes/refs/heads/x/HEAD), and a name ending in -g<hex> is read as
// `git describe` output: the commit that hex abbreviates. So RefValue asks
// cat-file for ref and those names in one exchange, and only when one of
// them answers, or the name could be a describe name, asks `git show-ref
// --verify`, which reads the ref itself, whether cat-file's answer is the
// ref's.
func (c *CatFile) RefValue(ctx context.Context, ref string) (string, error) {
	if !strings.HasPrefix(ref, "refs/") {
		return "", fmt.Errorf("read ref %q: not a full ref name under refs/", ref)
	}
	names := []string{ref, "refs/" + ref, "refs/tags/" + ref, "refs/heads/" + ref, "refs/remotes/" + ref, "refs/remotes/" + ref + "/HEAD"}
	infos, err := c.Infos(ctx, names)
	if err != nil {
		return "", err
	}
	if infos[0].Missing {
		// The ref itself is tried first: it is not there, or its object is not.
		return refmove.ZeroID, nil
	}
	exact := !describeLike(ref)
	for _, in := range infos[1:] {
		exact = exact && in.Missing
	}
	if exact {
		return infos[0].ID, nil
	}
	return showRef(ctx, c.p.dir, ref)
}

// describeLike reports whether git could read name as `git describe`
// output: it ends in "-g" and hex digits.
func describeLike(name string) bool {
	i := len(name)
	for i > 0 && strings.IndexByte("0123456789abcdefABCDEF", name[i-1]) >= 0 {
		i--
	}
	return strings.HasSuffix(name[:i], "-g")
}

// showRef reads ref itself with `git show-ref --verify`: no revision
// syntax, no expansion of the name.
func showRef(ctx context.Context, dir, ref string) (string, error) {
	out, err := output(ctx, dir, "show-ref", "--verify", "--", ref)
	var gerr *Error
	if errors.As(err, &gerr) && (strings.Contains(gerr.Stderr, "not a valid ref") || strings.Contains(gerr.Stderr, "bad ref")) {
		return refmove.ZeroID, nil // no such ref, or its object is not here
	}
	if err != nil {
		return "", err
	}
	id, name, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
	if !ok || name != ref || !IsID(id) {
		return "", fmt.Errorf("git show-ref %s: unexpected output %q", ref, out)
	}
	return id, nil
}
