package git

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
)

// IndexPackOptions says where index-pack puts a pack.
type IndexPackOptions struct {
	// ObjectDir, when set, receives the pack instead of the repository's own
	// object directory (a quarantine); the repository's objects stay visible
	// to resolve thin-pack bases.
	ObjectDir string
	// FixThin completes a thin pack with the bases it refers to.
	FixThin bool
}

// IndexPack reads a pack from r, checks every object, and writes it with its
// index into the repository at dir (or the quarantine of opts). It returns
// the pack's checksum as index-pack prints it.
func IndexPack(ctx context.Context, dir string, r io.Reader, opts IndexPackOptions) (string, error) {
	args := []string{"index-pack", "--stdin", "--strict"}
	if opts.FixThin {
		args = append(args, "--fix-thin")
	}
	var env []string
	if opts.ObjectDir != "" {
		env = []string{
			"GIT_OBJECT_DIRECTORY=" + opts.ObjectDir,
			"GIT_ALTERNATE_OBJECT_DIRECTORIES=" + dir + "/objects",
		}
	}
	var out bytes.Buffer
	if err := run(ctx, dir, env, r, &out, args...); err != nil {
		return "", err
	}
	// index-pack prints "pack\t<hash>" or "keep\t<hash>".
	line := strings.TrimSpace(out.String())
	if _, hash, ok := strings.Cut(line, "\t"); ok {
		return hash, nil
	}
	return "", fmt.Errorf("git index-pack: unexpected output %q", line)
}

// PackObjects writes to w a pack of every object reachable from wants and not
// from haves, as pack-objects --revs computes it. The walk is bounded by the
// objects the write adds, never by the size of the repository.
func PackObjects(ctx context.Context, dir string, wants, haves []string, w io.Writer) error {
	var in strings.Builder
	for _, id := range wants {
		in.WriteString(id)
		in.WriteByte('\n')
	}
	for _, id := range haves {
		in.WriteByte('^')
		in.WriteString(id)
		in.WriteByte('\n')
	}
	return run(ctx, dir, nil, strings.NewReader(in.String()), w,
		"pack-objects", "--stdout", "--revs", "--quiet", "--delta-base-offset")
}

// MissingObjects returns those of ids that the repository at dir does not
// have, looking also in extraObjectDir (a quarantine) when it is set. One git
// process answers for all of them.
func MissingObjects(ctx context.Context, dir, extraObjectDir string, ids []string) ([]string, error) {
	var in strings.Builder
	for _, id := range ids {
		if !IsID(id) {
			return nil, fmt.Errorf("invalid object id %q", id)
		}
		in.WriteString(id)
		in.WriteByte('\n')
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var env []string
	if extraObjectDir != "" {
		env = []string{"GIT_OBJECT_DIRECTORY=" + extraObjectDir, "GIT_ALTERNATE_OBJECT_DIRECTORIES=" + dir + "/objects"}
	}
	var out bytes.Buffer
	if err := run(ctx, dir, env, strings.NewReader(in.String()), &out, "cat-file", "--batch-check=%(objectname)"); err != nil {
		return nil, err
	}
	var missing []string
	for _, line := range strings.Split(out.String(), "\n") {
		if id, ok := strings.CutSuffix(line, " missing"); ok {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// AppendObjectHeader appends to b the pack header of an undeltified object
// of pack type t (1 commit, 2 tree, 3 blob, 4 tag) and size bytes: the type
// and the size's low four bits, then the rest of the size seven bits a
// byte, little end first.
func AppendObjectHeader(b []byte, t byte, size int) []byte {
	c := t<<4 | byte(size&0x0f)
	size >>= 4
	for size > 0 {
		b = append(b, c|0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	return append(b, c)
}
