package notedbfast

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/glob"
	"github.com/sitesync/sitesync/internal/refmove"
)

// DefaultRefs are the NoteDb namespaces of DESIGN.md §5, in the project's
// glob syntax (config.DefaultNoteDBRefs is a copy).
var DefaultRefs = []string{
	"refs/changes/*/*/meta",
	"refs/changes/*/*/robot-comments",
	"refs/draft-comments/**",
	"refs/starred-changes/**",
	"refs/users/**",
	"refs/groups/**",
	"refs/meta/external-ids",
	"refs/meta/group-names",
	"refs/sequences/**",
}

// MatchGlobs returns a matcher for ref globs (internal/glob syntax), for
// Config.Match when the caller has patterns rather than a config.
func MatchGlobs(patterns []string) (func(ref string) bool, error) {
	ps := make([]*glob.Pattern, 0, len(patterns))
	for _, p := range patterns {
		c, err := glob.Compile(p)
		if err != nil {
			return nil, err
		}
		ps = append(ps, c)
	}
	return func(ref string) bool { return glob.FirstMatch(ps, ref) >= 0 }, nil
}

// DefaultMaxBytes is notedb.max_bytes's default: 64 KiB covers 99.8% of
// real NoteDb updates (DESIGN.md §5).
const DefaultMaxBytes = 64 << 10

// Config is what the classifier needs from the configuration.
type Config struct {
	Match    func(ref string) bool // notedb.refs; nil means DefaultRefs
	MaxBytes int64                 // notedb.max_bytes; 0 means DefaultMaxBytes
}

// Path is the way a write travels to the peers.
type Path int

const (
	PathPack  Path = iota // the missing objects as a pack (packsync)
	PathDelta             // one delta frame
)

func (p Path) String() string {
	if p == PathDelta {
		return "delta"
	}
	return "pack"
}

// Classification is the verdict on one write.
type Classification struct {
	Path    Path
	Reason  string   // why PathPack, for logs
	Objects []Object // PathDelta: the new objects, dependency order
	Bytes   int64    // PathDelta: their total content size
}

// ObjectReader reads whole objects of a repository; *git.CatFile (one
// long-lived cat-file process) is one.
type ObjectReader interface {
	Object(ctx context.Context, id string) (git.Object, error)
}

// Classifier decides which writes take the fast path. Safe for concurrent
// use (its reader need not be; one reader serves one repository).
type Classifier struct {
	match    func(string) bool
	maxBytes int64
	metrics  *Metrics
}

// NewClassifier returns a classifier; m may be nil.
func NewClassifier(cfg Config, m *Metrics) (*Classifier, error) {
	c := &Classifier{match: cfg.Match, maxBytes: cfg.MaxBytes, metrics: m}
	if c.match == nil {
		var err error
		if c.match, err = MatchGlobs(DefaultRefs); err != nil {
			return nil, err
		}
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxBytes
	}
	return c, nil
}

// Classify decides the path of a write whose objects are in the repository
// r reads. A write takes the delta path when every ref matches the NoteDb
// patterns and the objects reachable from the new values and not from the
// old ones total at most MaxBytes. The walk reads at most MaxBytes of new
// objects plus the trees of the old values, never the repository's
// history. An error means the repository could not be read (for example an
// object is missing at the origin), not that the write is too big.
func (c *Classifier) Classify(ctx context.Context, r ObjectReader, updates []Update) (Classification, error) {
	if len(updates) == 0 {
		return Classification{}, errors.New("classify: no ref updates")
	}
	pack := func(format string, args ...any) (Classification, error) {
		c.metrics.observePath(PathPack)
		return Classification{Path: PathPack, Reason: fmt.Sprintf(format, args...)}, nil
	}
	var tips, haves []string
	for _, u := range updates {
		if !c.match(u.Ref) {
			return pack("ref %q is not a NoteDb ref", u.Ref)
		}
		if !git.IsID(u.Old) || !git.IsID(u.New) {
			return Classification{}, fmt.Errorf("classify: ref %s: invalid update %q -> %q", u.Ref, u.Old, u.New)
		}
		if u.New != refmove.ZeroID {
			tips = append(tips, u.New)
		}
		if u.Old != refmove.ZeroID {
			haves = append(haves, u.Old)
		}
	}
	objs, size, err := collect(ctx, r, tips, haves, walkLimits{maxBytes: c.maxBytes, maxObjects: maxWalkObjects})
	if errors.Is(err, errTooLarge) {
		return pack("new objects exceed %d bytes", c.maxBytes)
	}
	if err != nil {
		return Classification{}, fmt.Errorf("classify: %w", err)
	}
	c.metrics.observePath(PathDelta)
	return Classification{Path: PathDelta, Objects: objs, Bytes: size}, nil
}

// maxWalkObjects bounds the objects one walk collects: with MaxBytes at
// 64 KiB and the smallest object ~20 bytes, more means something unusual
// (a huge tree of tiny blobs) that a pack handles better.
const maxWalkObjects = 4096

// maxHaveObjects bounds the entries of old trees a walk reads to know which
// tree entries are not new. NoteDb trees hold one note per patch set.
const maxHaveObjects = 1 << 16

// ErrChainTooLong is the outcome of Chain when the objects back to a commit
// the peer has exceed the limits: send a pack instead.
var ErrChainTooLong = errors.New("chain exceeds the limit")

var errTooLarge = errors.New("walk exceeds the limit")

// ChainLimits bound Chain.
type ChainLimits struct {
	MaxObjects int   // 0 means 4096
	MaxBytes   int64 // 0 means 1 MiB
}

// Chain returns the objects a peer lacks to complete tips (typically the
// ids a MissingError names): every object reachable from tips and not from
// peerHas (commits the peer reported it has), in dependency order. The
// caller sends them in a delta before the one that failed. Past the limits
// it returns ErrChainTooLong and the caller falls back to a pack.
func Chain(ctx context.Context, r ObjectReader, tips, peerHas []string, lim ChainLimits) ([]Object, error) {
	if lim.MaxObjects <= 0 {
		lim.MaxObjects = maxWalkObjects
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = 1 << 20
	}
	objs, _, err := collect(ctx, r, tips, peerHas, walkLimits{maxBytes: lim.MaxBytes, maxObjects: lim.MaxObjects})
	if errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("chain from %d tips: %w", len(tips), ErrChainTooLong)
	}
	if err != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}
	return objs, nil
}

type walkLimits struct {
	maxBytes   int64
	maxObjects int
}

// walker collects the objects reachable from tips and not from haves.
type walker struct {
	ctx   context.Context
	r     ObjectReader
	lim   walkLimits
	have  map[string]bool
	seen  map[string]bool
	out   []Object
	size  int64
	nHave int
}

func collect(ctx context.Context, r ObjectReader, tips, haves []string, lim walkLimits) ([]Object, int64, error) {
	w := &walker{ctx: ctx, r: r, lim: lim, have: map[string]bool{}, seen: map[string]bool{}}
	for _, h := range haves {
		if err := w.addHave(h); err != nil {
			return nil, 0, err
		}
	}
	sort.Strings(tips) // deterministic order
	for _, t := range tips {
		if err := w.visit(t); err != nil {
			return nil, 0, err
		}
	}
	return w.out, w.size, nil
}

func (w *walker) read(id string) (Object, error) {
	o, err := w.r.Object(w.ctx, id)
	if err != nil {
		return Object{}, fmt.Errorf("read %s: %w", id, err)
	}
	t, err := ParseObjectType(o.Type)
	if err != nil {
		return Object{}, fmt.Errorf("read %s: %w", id, err)
	}
	return Object{Type: t, ID: o.ID, Data: o.Data}, nil
}

// addHave marks a commit (or blob, or tree) the peer has, and every object
// of its tree, as had. A have that is not in the repository is skipped: it
// only narrows the walk.
func (w *walker) addHave(id string) error {
	if w.have[id] {
		return nil
	}
	w.have[id] = true
	o, err := w.read(id)
	if errors.Is(err, git.ErrObjectMissing) {
		return nil
	}
	if err != nil {
		return err
	}
	switch o.Type {
	case Commit:
		links, err := Links(o.Type, o.Data)
		if err != nil {
			return fmt.Errorf("%s %s: %w", o.Type, o.ID, err)
		}
		return w.addHaveTree(links[0])
	case Tree:
		w.have[id] = false
		return w.addHaveTree(id)
	}
	return nil
}

func (w *walker) addHaveTree(id string) error {
	if w.have[id] {
		return nil
	}
	w.have[id] = true
	o, err := w.read(id)
	if err != nil {
		return err
	}
	if o.Type != Tree {
		return nil
	}
	// Entries are ids only; a subtree is read only to mark its own entries.
	data := o.Data
	for len(data) > 0 {
		sp := indexByte(data, ' ')
		nul := indexByte(data, 0)
		if sp < 0 || nul < sp || len(data) < nul+21 {
			return fmt.Errorf("tree %s: truncated entry", id)
		}
		mode := string(data[:sp])
		eid := hexID(data[nul+1 : nul+21])
		data = data[nul+21:]
		w.nHave++
		if w.nHave > maxHaveObjects {
			return errTooLarge
		}
		switch mode {
		case "40000":
			if err := w.addHaveTree(eid); err != nil {
				return err
			}
		case "160000":
		default:
			w.have[eid] = true
		}
	}
	return nil
}

// visit appends id's new objects in post-order: everything it refers to
// first, then itself.
func (w *walker) visit(id string) error {
	if w.have[id] || w.seen[id] {
		return nil
	}
	w.seen[id] = true
	o, err := w.read(id)
	if err != nil {
		return err
	}
	w.size += int64(len(o.Data))
	if w.size > w.lim.maxBytes || len(w.out) >= w.lim.maxObjects {
		return errTooLarge
	}
	links, err := Links(o.Type, o.Data)
	if err != nil {
		return fmt.Errorf("%s %s: %w", o.Type, o.ID, err)
	}
	for _, l := range links {
		if err := w.visit(l); err != nil {
			return err
		}
	}
	w.out = append(w.out, o)
	return nil
}
