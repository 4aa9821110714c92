package workload

import (
	"bufio"
	"container/heap"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sitesync/sitesync/bench/report"
	"github.com/sitesync/sitesync/internal/refmove"
)

// Replay is the notedb workload prepared from a corpus (see the package doc).
type Replay struct {
	// Seed is where the sites start: Origin holds the replayed objects too.
	Seed Seed
	// Updates are the meta ref updates in replay order.
	Updates []Update
	// Chains is how many meta refs the corpus has, Commits how many meta
	// commits (the replay may be limited to fewer).
	Chains, Commits int
}

// IsMetaRef reports whether ref is a change's NoteDb meta ref,
// refs/changes/XX/N/meta.
func IsMetaRef(ref string) bool {
	rest, ok := strings.CutPrefix(ref, "refs/changes/")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	return len(parts) == 3 && parts[2] == "meta" && parts[0] != "" && parts[1] != ""
}

// metaCommit is one commit of a meta chain.
type metaCommit struct {
	id, parent string
	time       int64
}

// PrepareNoteDb unpacks corpus (a git bundle or a repository) under dir and
// builds the replay of its most recent limit meta commits (all for limit ≤
// 0) and the seed repositories dir/origin.git and dir/peers.git.
func PrepareNoteDb(ctx context.Context, g *Git, corpus, dir, project string, limit int) (*Replay, error) {
	if _, err := os.Stat(corpus); err != nil {
		return nil, fmt.Errorf("notedb corpus: %w", err)
	}
	full := filepath.Join(dir, "full.git")
	if _, err := g.Run(ctx, "", nil, "clone", "--quiet", "--mirror", corpus, full); err != nil {
		return nil, fmt.Errorf("notedb corpus: %w", err)
	}
	chains, commits, err := metaChains(ctx, g, full)
	if err != nil {
		return nil, fmt.Errorf("notedb corpus %q: %w", corpus, err)
	}
	all := mergeChains(chains)
	window := all
	if limit > 0 && limit < len(all) {
		window = all[len(all)-limit:]
	}
	// Each update's raw size, while every object is at hand (before the
	// clock of any run starts).
	if err := g.SetRaw(ctx, full, window); err != nil {
		return nil, fmt.Errorf("notedb corpus %q: %w", corpus, err)
	}
	// Each meta ref starts at its value before its first replayed update,
	// or at its tip if none of its updates is replayed.
	start := make(map[string]string, len(chains))
	for ref, c := range chains {
		start[ref] = c[len(c)-1].id
	}
	seen := make(map[string]bool)
	for _, u := range window {
		if !seen[u.Ref] {
			seen[u.Ref] = true
			start[u.Ref] = u.Old
		}
	}
	var cmds strings.Builder
	for ref, v := range start {
		if v == refmove.ZeroID {
			fmt.Fprintf(&cmds, "delete %s\n", ref)
		} else {
			fmt.Fprintf(&cmds, "update %s %s\n", ref, v)
		}
	}
	r := &Replay{Updates: window, Chains: len(chains), Commits: commits,
		Seed: Seed{Project: project, Origin: filepath.Join(dir, "origin.git"), Peers: filepath.Join(dir, "peers.git")}}
	// The origin: every object, the refs at their starting values.
	if err := CopyRepo(full, r.Seed.Origin); err != nil {
		return nil, fmt.Errorf("notedb seed: %w", err)
	}
	if _, err := g.Run(ctx, r.Seed.Origin, strings.NewReader(cmds.String()), "update-ref", "--stdin"); err != nil {
		return nil, fmt.Errorf("notedb seed: %w", err)
	}
	if err := g.Configure(ctx, r.Seed.Origin, "gc.auto", "0"); err != nil {
		return nil, fmt.Errorf("notedb seed: %w", err)
	}
	// The peers: the same refs, only the objects they reach. repack -a -d
	// without -k/--cruft drops every unreachable object.
	if err := CopyRepo(r.Seed.Origin, r.Seed.Peers); err != nil {
		return nil, fmt.Errorf("notedb seed: %w", err)
	}
	if _, err := g.Run(ctx, r.Seed.Peers, nil, "repack", "-a", "-d", "-q"); err != nil {
		return nil, fmt.Errorf("notedb seed: %w", err)
	}
	if _, err := g.Run(ctx, r.Seed.Peers, nil, "prune", "--expire=now"); err != nil {
		return nil, fmt.Errorf("notedb seed: %w", err)
	}
	if err := os.RemoveAll(full); err != nil {
		return nil, fmt.Errorf("notedb seed: %w", err)
	}
	return r, nil
}

// metaChains returns every meta ref's chain, oldest commit first, and the
// number of meta commits.
func metaChains(ctx context.Context, g *Git, repo string) (map[string][]metaCommit, int, error) {
	out, err := g.Run(ctx, repo, nil, "for-each-ref", "--format=%(objectname) %(refname)", "refs/changes/")
	if err != nil {
		return nil, 0, err
	}
	tips := make(map[string]string)
	var stdin strings.Builder
	for line := range strings.Lines(out) {
		id, ref, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && IsMetaRef(ref) {
			tips[ref] = id
			stdin.WriteString(id + "\n")
		}
	}
	if len(tips) == 0 {
		return nil, 0, fmt.Errorf("no refs/changes/*/meta refs")
	}
	// One walk over every chain: "time id parent…" per commit.
	out, err = g.Run(ctx, repo, strings.NewReader(stdin.String()), "rev-list", "--timestamp", "--parents", "--stdin")
	if err != nil {
		return nil, 0, err
	}
	byID := make(map[string]metaCommit)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		ts, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("rev-list line %q: %w", sc.Text(), err)
		}
		c := metaCommit{id: f[1], parent: refmove.ZeroID, time: ts}
		if len(f) > 2 {
			c.parent = f[2]
		}
		byID[c.id] = c
	}
	chains := make(map[string][]metaCommit, len(tips))
	for ref, tip := range tips {
		var rev []metaCommit
		for id := tip; id != refmove.ZeroID; {
			c, ok := byID[id]
			if !ok {
				return nil, 0, fmt.Errorf("%s: commit %s not walked", ref, id)
			}
			rev = append(rev, c)
			id = c.parent
		}
		for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
			rev[i], rev[j] = rev[j], rev[i]
		}
		chains[ref] = rev
	}
	return chains, len(byID), nil
}

// mergeChains orders every chain's commits as updates by committer time,
// ties broken by ref name; each chain keeps its own order (a k-way merge).
func mergeChains(chains map[string][]metaCommit) []Update {
	h := &chainHeap{}
	for ref, c := range chains {
		if len(c) > 0 {
			h.items = append(h.items, chainHead{ref: ref, chain: c})
		}
	}
	heap.Init(h)
	var out []Update
	for h.Len() > 0 {
		top := &h.items[0]
		c := top.chain[top.pos]
		out = append(out, Update{Kind: LocalWrite, Ref: top.ref, Old: c.parent, New: c.id})
		top.pos++
		if top.pos == len(top.chain) {
			heap.Pop(h)
		} else {
			heap.Fix(h, 0)
		}
	}
	return out
}

type chainHead struct {
	ref   string
	chain []metaCommit
	pos   int
}

type chainHeap struct{ items []chainHead }

func (h *chainHeap) Len() int { return len(h.items) }
func (h *chainHeap) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	ta, tb := a.chain[a.pos].time, b.chain[b.pos].time
	if ta != tb {
		return ta < tb
	}
	return a.ref < b.ref
}
func (h *chainHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *chainHeap) Push(x any)    { h.items = append(h.items, x.(chainHead)) }
func (h *chainHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

// NoteDb runs the notedb workload against t, whose sites started from
// r.Seed: every update of r, in order, as a local write at the origin.
func NoteDb(ctx context.Context, cfg Config, t Target, r *Replay) ([]report.Sample, error) {
	mt, err := newMeter(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("notedb workload: %w", err)
	}
	var out []report.Sample
	for i, u := range r.Updates {
		s, err := measure(ctx, cfg, t, mt, "notedb", i, u)
		if err != nil {
			return out, err
		}
		out = append(out, s...)
	}
	return out, nil
}
