package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sitesync/sitesync/internal/refmove"
)

// The fast path of RefUpdater.Apply writes loose refs itself, speaking the
// files backend's lock-file protocol of C git (refs/files-backend.c, git
// 2.39) so that it stays safe against any concurrent git or JGit writer:
//
//  1. lock every ref, in name order: create "<ref>.lock" with O_EXCL,
//     making the ref's missing parent directories;
//  2. with every lock held, read each ref's value (its loose file, else its
//     packed-refs entry) and compare it with the expected old value;
//  3. write "<new>\n" into each lock file (fsynced if core.fsync includes
//     references) and rename each lock onto its ref.
//
// A failure before the renames removes every lock and directory created.
// Whatever this path cannot do exactly as git would — delete a ref, write a
// reflog, run a reference-transaction hook, settle a directory/file
// conflict, wait for a lock another writer holds, follow a symbolic ref —
// it leaves to git: the whole transaction goes to `git update-ref --stdin`,
// which also produces git's own error message.

// ErrStaleRef is the outcome of a transaction in which a ref is not at the
// old value the caller expected. Nothing was changed.
var ErrStaleRef = errors.New("ref is not at the expected old value")

// StaleRefError names the ref of a transaction that was not at its expected
// old value, in git's words. Got is refmove.ZeroID for a ref that does not exist.
type StaleRefError struct {
	Ref  string
	Want string
	Got  string
}

func (e *StaleRefError) Error() string {
	switch {
	case e.Want == refmove.ZeroID:
		return fmt.Sprintf("cannot lock ref '%s': reference already exists", e.Ref)
	case e.Got == refmove.ZeroID:
		return fmt.Sprintf("cannot lock ref '%s': unable to resolve reference '%s'", e.Ref, e.Ref)
	default:
		return fmt.Sprintf("cannot lock ref '%s': is at %s but expected %s", e.Ref, e.Got, e.Want)
	}
}

func (e *StaleRefError) Is(target error) bool { return target == ErrStaleRef }

// racyWindow is how recent a file's mtime may be, when it is read, for its
// stat data not to be trusted later: a rewrite within the file system's
// timestamp granularity could keep size, mtime and (reused) inode number.
// Two seconds covers every file system's coarse clock (git's "racy git").
const racyWindow = 2 * time.Second

// fileKey is what tells one version of a file from another.
type fileKey struct {
	ino   uint64
	size  int64
	mtime time.Time
	racy  bool // too recent when read to be trusted: always re-read
}

func keyOf(fi os.FileInfo, now time.Time) fileKey {
	k := fileKey{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.ino = uint64(st.Ino)
	}
	k.racy = !k.mtime.Before(now.Add(-racyWindow))
	return k
}

func (k fileKey) same(o fileKey) bool {
	return !k.racy && k.ino == o.ino && k.size == o.size && k.mtime.Equal(o.mtime)
}

// refConfig is what the repository's configuration says about ref writes.
type refConfig struct {
	key      fileKey // of $GIT_DIR/config when read
	raw      []byte  // its content then
	unusable string  // why the fast path may not run at all, if it may not
	reflog   bool    // core.logAllRefUpdates asks for reflogs
	fsync    bool    // core.fsync includes references
	hooks    string  // the effective hooks directory, "" if not known
}

// fastRefs is the fast path's view of one repository. Its methods run
// under the RefUpdater's mutex.
type fastRefs struct {
	dir       string // where git runs
	env       []string
	skipHooks bool
	objects   *CatFile

	gitDir string // "" until resolved
	noFast string // set when the repository can never take the fast path
	cfg    *refConfig
	reread bool // the configuration was (re)read by the last apply
	packed packedRefs
}

// apply runs the transaction on the fast path. It returns a non-empty
// reason, having changed nothing, when git must run the transaction
// instead; otherwise the transaction's outcome.
func (f *fastRefs) apply(ctx context.Context, updates []RefUpdate) (reason string, err error) {
	f.reread = false // set again only if this apply reads the configuration
	if err := ctx.Err(); err != nil {
		return "", err
	}
	ups := slices.Clone(updates)
	slices.SortFunc(ups, func(a, b RefUpdate) int { return strings.Compare(a.Ref, b.Ref) })
	for i, up := range ups {
		switch {
		case up.Old == "":
			return "unchecked old value", nil
		case up.New == refmove.ZeroID:
			return "deletion", nil
		case !fastRefName(up.Ref):
			return "unusual ref name", nil
		case i > 0 && ups[i-1].Ref == up.Ref:
			return "duplicate ref", nil
		}
	}
	if len(ups) > 1 {
		// A ref of the batch that is a directory of another ("refs/a",
		// "refs/a/b"): the two need not sort side by side ("refs/a-x").
		names := make(map[string]bool, len(ups))
		for _, up := range ups {
			names[up.Ref] = true
		}
		for _, up := range ups {
			for i := len("refs/"); i < len(up.Ref); i++ {
				if up.Ref[i] == '/' && names[up.Ref[:i]] {
					return "directory/file conflict within the transaction", nil
				}
			}
		}
	}
	if why := f.prepare(ctx); why != "" {
		return why, nil
	}
	cfg := f.cfg
	if !f.skipHooks {
		if cfg.hooks == "" {
			return "hooks directory not resolved", nil
		}
		if _, err := os.Stat(filepath.Join(cfg.hooks, "reference-transaction")); !errors.Is(err, os.ErrNotExist) {
			return "reference-transaction hook", nil
		}
	}
	if cfg.reflog {
		return "reflogs configured", nil
	}
	if why, err := f.checkObjects(ctx, ups); why != "" || err != nil {
		return why, err
	}

	tx := refTxn{gitDir: f.gitDir}
	defer tx.undo()
	for _, up := range ups {
		if why := tx.lock(up.Ref); why != "" {
			return why, nil
		}
	}
	// Every lock is held: the values read now cannot change until the
	// locks go (git's writers and pack-refs take the same locks), and no
	// reflog of these refs can appear (git makes one holding the ref's lock).
	if exists(filepath.Join(f.gitDir, "logs")) {
		// git also logs the update of the branch HEAD points at into
		// HEAD's reflog, when there is one.
		if exists(filepath.Join(f.gitDir, "logs", "HEAD")) {
			return "HEAD has a reflog", nil
		}
		for _, up := range ups {
			if exists(filepath.Join(f.gitDir, "logs", up.Ref)) {
				return "ref has a reflog", nil
			}
		}
	}
	var packed *packedRefs
	write := make([]bool, len(ups))
	for i, up := range ups {
		cur, why := readLoose(tx.paths[i]) // locked in this order
		if why != "" {
			return why, nil
		}
		if cur == "" { // no loose file: the packed value, if any
			if packed == nil {
				if why := f.packed.load(filepath.Join(f.gitDir, "packed-refs")); why != "" {
					return why, nil
				}
				packed = &f.packed
			}
			cur = packed.get(up.Ref)
			if cur == refmove.ZeroID && packed.conflicts(up.Ref) {
				return "directory/file conflict with a packed ref", nil
			}
		}
		if cur != up.Old {
			return "", fmt.Errorf("apply ref transaction: %w", &StaleRefError{Ref: up.Ref, Want: up.Old, Got: cur})
		}
		write[i] = cur != up.New
	}
	for i, up := range ups {
		if !write[i] {
			continue // git leaves a ref that does not move untouched
		}
		if err := tx.write(i, up.New, cfg.fsync); err != nil {
			return "write failed: " + err.Error(), nil
		}
	}
	// git closes a lock it will not rename too, before any rename.
	for i := range ups {
		if !write[i] {
			_ = syscall.Close(tx.locks[i])
			tx.locks[i] = -1
		}
	}
	// The point of no return: like git, a rename that fails leaves the
	// refs renamed before it moved.
	for i, up := range ups {
		if !write[i] {
			continue
		}
		if err := tx.commit(i); err != nil {
			return "", fmt.Errorf("apply ref transaction: cannot update ref '%s': %w", up.Ref, err)
		}
	}
	tx.dirs = nil // they hold the new refs now
	return "", nil
}

// prepare resolves the repository and (re)reads its configuration when it
// changed. It returns why the fast path may not run, if it may not.
func (f *fastRefs) prepare(ctx context.Context) string {
	if f.noFast != "" {
		return f.noFast
	}
	if f.gitDir == "" {
		var out bytes.Buffer
		err := run(ctx, f.dir, f.env, nil, &out, "rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir")
		if err != nil {
			return "rev-parse failed: " + err.Error()
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 2 {
			return "rev-parse answered " + out.String()
		}
		if filepath.Clean(lines[0]) != filepath.Clean(lines[1]) {
			f.noFast = "a worktree (refs split between two directories)"
			return f.noFast
		}
		f.gitDir = filepath.Clean(lines[0])
	}
	path := filepath.Join(f.gitDir, "config")
	fi, err := os.Stat(path)
	if err != nil {
		return "repository config: " + err.Error()
	}
	key := keyOf(fi, time.Now())
	if f.cfg != nil && f.cfg.key.same(key) {
		return f.cfg.unusable
	}
	// Changed, or too recent to tell: ask git only if the bytes differ.
	raw, err := os.ReadFile(path)
	if err != nil {
		return "repository config: " + err.Error()
	}
	if f.cfg != nil && bytes.Equal(raw, f.cfg.raw) {
		f.cfg.key = key
		return f.cfg.unusable
	}
	var out bytes.Buffer
	if err := run(ctx, f.dir, f.env, nil, &out, "config", "-z", "--list"); err != nil {
		f.cfg = nil
		return "git config failed: " + err.Error()
	}
	cfg := parseRefConfig(out.Bytes(), f.dir, f.gitDir)
	cfg.key, cfg.raw = key, raw
	f.cfg = &cfg
	f.reread = true
	return f.cfg.unusable
}

// parseRefConfig reads `git config -z --list` output. dir is where git
// runs (a relative core.hooksPath is relative to it), gitDir the
// repository.
func parseRefConfig(list []byte, dir, gitDir string) refConfig {
	vals := map[string]string{}
	noValue := map[string]bool{}
	for _, entry := range bytes.Split(list, []byte{0}) {
		if len(entry) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(entry, []byte{'\n'})
		key := strings.ToLower(string(k)) // only section and name matter here
		vals[key] = string(v)
		noValue[key] = !ok
	}
	var c refConfig
	if v, ok := vals["extensions.refstorage"]; ok && v != "files" {
		c.unusable = "ref storage " + v
	}
	if v, ok := vals["extensions.objectformat"]; ok && !strings.EqualFold(v, "sha1") {
		c.unusable = "object format " + v
	}
	if v, ok := vals["core.sharedrepository"]; ok {
		switch strings.ToLower(v) {
		case "", "false", "no", "off", "umask", "0":
		default:
			c.unusable = "shared repository permissions"
		}
	}
	bare := true
	if v, ok := vals["core.bare"]; ok {
		b, known := parseBool(v, noValue["core.bare"])
		bare = b || !known
	}
	if v, ok := vals["core.logallrefupdates"]; ok {
		if strings.EqualFold(v, "always") {
			c.reflog = true
		} else {
			b, known := parseBool(v, noValue["core.logallrefupdates"])
			c.reflog = b || !known
		}
	} else {
		c.reflog = !bare // git's default: reflogs in repositories with a work tree
	}
	if v, ok := vals["core.fsync"]; ok {
		for _, t := range strings.Split(v, ",") {
			switch strings.ToLower(strings.TrimSpace(t)) {
			case "reference", "committed", "added", "all":
				c.fsync = true
			}
		}
	}
	c.hooks = filepath.Join(gitDir, "hooks")
	if v, ok := vals["core.hookspath"]; ok && v != "" {
		switch {
		case strings.HasPrefix(v, "~"), strings.Contains(v, "%("):
			c.hooks = "" // not resolved here: the hook is assumed present
		case filepath.IsAbs(v):
			c.hooks = v
		default:
			c.hooks = filepath.Join(dir, v)
		}
	}
	return c
}

// parseBool reads a git boolean; known is false for a value git would not
// take as one.
func parseBool(v string, noValue bool) (b, known bool) {
	if noValue {
		return true, true
	}
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0", "":
		return false, true
	}
	return false, false
}

// checkObjects makes sure, as git update-ref does, that every new object
// exists and that a branch gets a commit. A failing check is left to git,
// which says so in its words.
func (f *fastRefs) checkObjects(ctx context.Context, ups []RefUpdate) (reason string, err error) {
	ids := make([]string, len(ups))
	for i, up := range ups {
		ids[i] = up.New
	}
	// A cancelled exchange would kill the shared cat-file; this one is short.
	infos, err := f.objects.Infos(context.WithoutCancel(ctx), ids)
	if err != nil {
		return "", fmt.Errorf("apply ref transaction: check new objects: %w", err)
	}
	for i, in := range infos {
		if in.Missing {
			return "missing object", nil
		}
		if in.Type != "commit" && strings.HasPrefix(ups[i].Ref, "refs/heads/") {
			return "non-commit on a branch", nil
		}
	}
	return "", nil
}

// fastRefName reports whether ref is a name git's check-ref-format surely
// accepts and the fast path may write as a file. It refuses more than git
// does (any byte outside printable ASCII); those names go to git.
func fastRefName(ref string) bool {
	if !strings.HasPrefix(ref, "refs/") || len(ref) > 1024 ||
		strings.Contains(ref, "..") || strings.Contains(ref, "@{") || strings.HasSuffix(ref, ".") {
		return false
	}
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("~^:?*[\\", c) >= 0 {
			return false
		}
	}
	for comp := range strings.SplitSeq(ref, "/") {
		if comp == "" || comp[0] == '.' || strings.HasSuffix(comp, ".lock") || len(comp) > 200 {
			return false
		}
	}
	return true
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil || !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR)
}

// readLoose reads a loose ref: its value, "" when there is no loose file,
// or why the fast path cannot read it (a symbolic ref, a directory, a
// malformed file).
func readLoose(path string) (id, reason string) {
	// Raw system calls: os.File would register each file with the poller
	// and stat before a rename, a third more calls per ref.
	fd, err := openNoEINTR(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err == syscall.ENOENT {
		return "", ""
	}
	if err != nil {
		return "", "read loose ref: " + err.Error()
	}
	defer syscall.Close(fd)
	// One read: a ref file is 41 bytes; one that fills the buffer is not a
	// plain ref.
	var buf [128]byte
	n, err := readNoEINTR(fd, buf[:])
	if err != nil {
		return "", "read loose ref: " + err.Error()
	}
	b := buf[:n]
	if n == len(buf) || len(b) < len(refmove.ZeroID) || !IsID(string(b[:len(refmove.ZeroID)])) {
		return "", "loose ref is not an object id (symbolic or broken)"
	}
	if rest := b[len(refmove.ZeroID):]; len(rest) > 0 && !isSpace(rest[0]) {
		return "", "malformed loose ref"
	}
	return string(b[:len(refmove.ZeroID)]), ""
}

func openNoEINTR(path string, mode int, perm uint32) (int, error) {
	for {
		fd, err := syscall.Open(path, mode, perm)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

func readNoEINTR(fd int, b []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, b)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

func isSpace(c byte) bool { return c == '\n' || c == ' ' || c == '\t' || c == '\r' }

// refTxn is the locks and directories of one fast transaction.
type refTxn struct {
	gitDir string
	locks  []int    // lock file descriptors by update, -1 once closed
	paths  []string // ref file paths, by update; "" once renamed
	dirs   []string // directories created, parents first
}

const lockFlags = syscall.O_RDWR | syscall.O_CREAT | syscall.O_EXCL | syscall.O_CLOEXEC

// lock takes ref's lock file. It returns why the fast path must give up,
// if it must; the caller undoes.
func (t *refTxn) lock(ref string) string {
	path := filepath.Join(t.gitDir, ref)
	fd, err := openNoEINTR(path+".lock", lockFlags, 0o666)
	if err == syscall.ENOENT {
		if why := t.mkdirs(filepath.Dir(path)); why != "" {
			return why
		}
		fd, err = openNoEINTR(path+".lock", lockFlags, 0o666)
	}
	if err == syscall.EEXIST {
		// Another writer holds it; git waits for it a while
		// (core.filesRefLockTimeout) and reports it in its words.
		return "ref locked by another writer"
	}
	if err != nil {
		return "lock: open " + path + ".lock: " + err.Error()
	}
	t.locks = append(t.locks, fd)
	t.paths = append(t.paths, path)
	return ""
}

// mkdirs makes dir and its missing parents inside the repository,
// remembering those it made.
func (t *refTxn) mkdirs(dir string) string {
	rel, err := filepath.Rel(t.gitDir, dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "ref directory outside the repository"
	}
	p := t.gitDir
	for comp := range strings.SplitSeq(rel, string(filepath.Separator)) {
		p = filepath.Join(p, comp)
		err := os.Mkdir(p, 0o777)
		if err == nil {
			t.dirs = append(t.dirs, p)
			continue
		}
		if !errors.Is(err, os.ErrExist) {
			return "make ref directory: " + err.Error()
		}
		// Exists: a directory, or a ref in the way (the next Mkdir or the
		// lock then fails with ENOTDIR, which goes to git).
	}
	return ""
}

// write writes the new value into lock i and closes it, as git does before
// it renames any lock.
func (t *refTxn) write(i int, id string, fsync bool) error {
	fd := t.locks[i]
	b := []byte(id + "\n")
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	if fsync {
		if err := syscall.Fsync(fd); err != nil {
			return err
		}
	}
	t.locks[i] = -1
	return syscall.Close(fd)
}

// commit renames lock i onto its ref.
func (t *refTxn) commit(i int) error {
	path := t.paths[i]
	t.paths[i] = ""
	if err := syscall.Rename(path+".lock", path); err != nil {
		_ = syscall.Unlink(path + ".lock")
		return err
	}
	return nil
}

// undo removes every lock still held and the directories made for them
// (those still empty: another writer may have put a ref there meanwhile).
func (t *refTxn) undo() {
	for i, path := range t.paths {
		if fd := t.locks[i]; fd >= 0 {
			_ = syscall.Close(fd)
		}
		if path != "" {
			_ = syscall.Unlink(path + ".lock")
		}
	}
	t.locks, t.paths = nil, nil
	for i := len(t.dirs) - 1; i >= 0; i-- {
		_ = syscall.Rmdir(t.dirs[i])
	}
	t.dirs = nil
}

// packedRefs is the parsed packed-refs file, kept while the file does not
// change.
type packedRefs struct {
	key   fileKey // zero when there is no file
	names []string
	ids   []string // by names' index
	bad   string   // why the file cannot be used, if it cannot
}

// load (re)reads the packed-refs file at path unless the cached parse is of
// the same file. It returns why it cannot be used, if it cannot.
func (p *packedRefs) load(path string) string {
	now := time.Now()
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		*p = packedRefs{}
		return ""
	}
	if err != nil {
		return "packed-refs: " + err.Error()
	}
	if p.key != (fileKey{}) && p.key.same(keyOf(fi, now)) {
		return p.bad
	}
	fd, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		*p = packedRefs{} // removed since the Stat
		return ""
	}
	if err != nil {
		return "packed-refs: " + err.Error()
	}
	defer fd.Close()
	fi, err = fd.Stat() // of the file read, which a rename cannot change
	if err != nil {
		return "packed-refs: " + err.Error()
	}
	data, err := io.ReadAll(fd)
	if err != nil {
		return "packed-refs: " + err.Error()
	}
	*p = parsePacked(string(data))
	p.key = keyOf(fi, now)
	return p.bad
}

// parsePacked parses the content of a packed-refs file: an optional
// "# pack-refs with: <traits>" header, then "<id> <ref>" lines, each
// optionally followed by "^<id>", the object its tag peels to.
func parsePacked(data string) packedRefs {
	var p packedRefs
	sorted := false
	if rest, ok := strings.CutPrefix(data, "# pack-refs with:"); ok {
		header, body, _ := strings.Cut(rest, "\n")
		sorted = slices.Contains(strings.Fields(header), "sorted")
		data = body
	}
	for line := range strings.SplitSeq(data, "\n") {
		switch {
		case line == "":
		case line[0] == '^':
			if len(p.names) == 0 || !IsID(line[1:]) {
				p.bad = "malformed packed-refs"
				return p
			}
		default:
			id, name, ok := strings.Cut(line, " ")
			if !ok || !IsID(id) || name == "" {
				p.bad = "malformed packed-refs"
				return p
			}
			p.names = append(p.names, name)
			p.ids = append(p.ids, id)
		}
	}
	if len(p.names) > 1 && (!sorted || !slices.IsSorted(p.names)) {
		idx := make([]int, len(p.names))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return strings.Compare(p.names[a], p.names[b]) })
		names, ids := make([]string, len(idx)), make([]string, len(idx))
		for i, j := range idx {
			names[i], ids[i] = p.names[j], p.ids[j]
		}
		p.names, p.ids = names, ids
	}
	return p
}

// get is the packed value of ref, refmove.ZeroID when it is not packed.
func (p *packedRefs) get(ref string) string {
	if i, ok := slices.BinarySearch(p.names, ref); ok {
		return p.ids[i]
	}
	return refmove.ZeroID
}

// conflicts reports whether a packed ref is in the way of creating ref: a
// packed ref whose name is a directory of ref, or one under ref/.
func (p *packedRefs) conflicts(ref string) bool {
	for i := len("refs/"); i < len(ref); i++ {
		if ref[i] == '/' {
			if _, ok := slices.BinarySearch(p.names, ref[:i]); ok {
				return true
			}
		}
	}
	i, _ := slices.BinarySearch(p.names, ref+"/")
	return i < len(p.names) && strings.HasPrefix(p.names[i], ref+"/")
}
