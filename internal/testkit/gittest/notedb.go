package gittest

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/refmove"
)

// This file generates Gerrit NoteDb-shaped histories: changes with
// patch-set refs refs/changes/NN/C/P, meta commits on refs/changes/NN/C/meta
// whose messages carry Gerrit's footers (Patch-set:, Status:, Label:,
// Reviewer:, ...) and whose trees are empty or notes maps of JSON comment
// blobs, draft comments on refs/draft-comments/NN/C/ACCOUNT, and the
// refs/sequences/changes ref that points straight at a blob. The objects are
// built in memory (NoteDbWrites, pure and deterministic for a shape and
// seed) so that a dictionary generator and benchmarks can use them without
// git; GenerateNoteDb also stores them in a bare repository.

// GitObject is one git object: its type name, id and content.
type GitObject struct {
	Type string // commit, tree, blob or tag
	ID   string
	Data []byte
}

// NoteDbUpdate moves one ref (refmove.Update; Old refmove.ZeroID means
// create).
type NoteDbUpdate = refmove.Update

// NoteDbWrite is one write as Gerrit would do it: the objects it adds, in
// dependency order (an object after every object it refers to), and the
// refs it moves atomically.
type NoteDbWrite struct {
	Kind    string // "base", "sequence", "create", "patchset", "meta", "draft"
	Updates []NoteDbUpdate
	Objects []GitObject
}

// NoteDbOnly reports whether every ref of the write is a NoteDb ref (not a
// branch or a patch-set ref), so it may take the fast path.
func (w NoteDbWrite) NoteDbOnly() bool {
	return w.Kind == "sequence" || w.Kind == "meta" || w.Kind == "draft"
}

// NoteDbShape says what NoteDbWrites builds.
type NoteDbShape struct {
	Changes     int    // changes created
	Events      int    // review events per change after its creation (votes, comments, patch sets, drafts, status)
	Seed        uint64 // different seeds give different texts and interleavings
	ServerID    string // Gerrit server id in identities; "" means a fixed one
	FirstChange int    // number of the first change; 0 means 1001
}

// EmptyTreeID is the id of git's empty tree, the tree of most meta commits.
const EmptyTreeID = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

// HashObject returns the git object id of data as an object of type typ.
func HashObject(typ string, data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "%s %d\x00", typ, len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

func newObject(typ string, data []byte) GitObject {
	return GitObject{Type: typ, ID: HashObject(typ, data), Data: data}
}

type treeEntry struct {
	mode string // "100644" or "40000"
	name string
	id   string
}

// makeTree serialises entries in git's order (a directory sorts as name+"/").
func makeTree(entries []treeEntry) GitObject {
	key := func(e treeEntry) string {
		if e.mode == "40000" {
			return e.name + "/"
		}
		return e.name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	var b bytes.Buffer
	for _, e := range entries {
		raw, _ := hex.DecodeString(e.id)
		fmt.Fprintf(&b, "%s %s\x00", e.mode, e.name)
		b.Write(raw)
	}
	return newObject("tree", b.Bytes())
}

// noteDbGen is the state of one generated history.
type noteDbGen struct {
	rng      *rand.Rand
	now      int64
	serverID string
	base     string // the branch commit every patch set builds on
	seq      string // current refs/sequences/changes blob
	writes   []NoteDbWrite
}

type genChange struct {
	num       int
	owner     int
	patchSets []string            // patch-set commit ids
	meta      string              // current meta commit
	notes     map[string][]string // patch-set commit id -> comment JSON objects
	drafts    map[int]string      // account -> draft ref value
	draftNote map[int][]string
	reviewers []int
	status    string
	events    int
}

// NoteDbWrites returns the writes of a NoteDb-shaped history: a base branch
// commit, then changes created and reviewed in an interleaved order, as
// concurrent users would. Deterministic for a shape.
func NoteDbWrites(s NoteDbShape) []NoteDbWrite {
	g := &noteDbGen{
		rng:      rand.New(rand.NewPCG(s.Seed, 0x6e6f746564622131)),
		now:      1600000000,
		serverID: s.ServerID,
	}
	if g.serverID == "" {
		g.serverID = "173816e5-2b9a-37c3-8a2e-48639d4f1153"
	}
	first := s.FirstChange
	if first == 0 {
		first = 1001
	}
	g.baseCommit()
	var live []*genChange
	next := 0
	for next < s.Changes || len(live) > 0 {
		// Start a new change now and then; otherwise move a live one on.
		if next < s.Changes && (len(live) == 0 || g.rng.IntN(3) == 0) {
			c := &genChange{num: first + next, owner: 1000000 + g.rng.IntN(40), notes: map[string][]string{},
				drafts: map[int]string{}, draftNote: map[int][]string{}, status: "new"}
			next++
			g.sequence(c.num + 1)
			g.create(c)
			if s.Events > 0 {
				live = append(live, c)
			}
			continue
		}
		i := g.rng.IntN(len(live))
		c := live[i]
		g.event(c, c.events == s.Events-1)
		c.events++
		if c.events >= s.Events {
			live = append(live[:i], live[i+1:]...)
		}
	}
	return g.writes
}

func (g *noteDbGen) tick() int64 { g.now += int64(1 + g.rng.IntN(600)); return g.now }

func (g *noteDbGen) user(id int) string {
	return fmt.Sprintf("Gerrit User %d <%d@%s>", id, id, g.serverID)
}

func (g *noteDbGen) baseCommit() {
	readme := newObject("blob", []byte("# example plugin\n\nA project under review.\n"))
	tree := makeTree([]treeEntry{{"100644", "README.md", readme.ID}})
	t := g.tick()
	c := newObject("commit", fmt.Appendf(nil, "tree %s\nauthor Dev One <dev1@example.com> %d +0000\ncommitter Dev One <dev1@example.com> %d +0000\n\nInitial commit\n", tree.ID, t, t))
	g.base = c.ID
	g.writes = append(g.writes, NoteDbWrite{Kind: "base", Objects: []GitObject{readme, tree, c},
		Updates: []NoteDbUpdate{{Ref: "refs/heads/master", Old: refmove.ZeroID, New: c.ID}}})
}

func (g *noteDbGen) sequence(n int) {
	b := newObject("blob", []byte(fmt.Sprint(n)))
	old := g.seq
	if old == "" {
		old = refmove.ZeroID
	}
	g.seq = b.ID
	g.writes = append(g.writes, NoteDbWrite{Kind: "sequence", Objects: []GitObject{b},
		Updates: []NoteDbUpdate{{Ref: "refs/sequences/changes", Old: old, New: b.ID}}})
}

func changeRef(num int, leaf string) string {
	return fmt.Sprintf("refs/changes/%02d/%d/%s", num%100, num, leaf)
}

var words = strings.Fields(`the a this that should could we it not be is are to of in for on with as
	method class field null check test case error handle return value config cache index event
	replica site lock thread timeout retry queue message forward plugin module review patch
	change comment reviewer submit rebase merge conflict name variable constant refactor extract
	simplify remove unused import javadoc typo spacing indentation please why done fixed ack
	nit suggestion consider instead maybe here above below line file logic`)

func (g *noteDbGen) sentence(minWords, maxWords int) string {
	n := minWords + g.rng.IntN(maxWords-minWords+1)
	w := make([]string, n)
	for i := range w {
		w[i] = words[g.rng.IntN(len(words))]
	}
	s := strings.Join(w, " ")
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

func (g *noteDbGen) hexID(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return hex.EncodeToString(b)
}

// patchSet builds the code commit of patch set ps of c.
func (g *noteDbGen) patchSet(c *genChange, ps int) (GitObject, []GitObject) {
	var content strings.Builder
	for i := range 5 + g.rng.IntN(20) {
		fmt.Fprintf(&content, "line %d of change %d patch set %d: %s\n", i, c.num, ps, g.sentence(3, 9))
	}
	blob := newObject("blob", []byte(content.String()))
	readme := newObject("blob", []byte("# example plugin\n\nA project under review.\n"))
	sub := makeTree([]treeEntry{{"100644", fmt.Sprintf("Change%d.java", c.num), blob.ID}})
	tree := makeTree([]treeEntry{{"100644", "README.md", readme.ID}, {"40000", "src", sub.ID}})
	t := g.tick()
	author := fmt.Sprintf("Dev %d <dev%d@example.com>", c.owner, c.owner)
	msg := fmt.Sprintf("%s\n\n%s\n\nChange-Id: I%s\n", g.sentence(3, 8), g.sentence(8, 30), g.hexID(20))
	commit := newObject("commit", fmt.Appendf(nil, "tree %s\nparent %s\nauthor %s %d +0000\ncommitter %s %d +0000\n\n%s",
		tree.ID, g.base, author, t, author, t, msg))
	return commit, []GitObject{blob, sub, tree, commit}
}

// metaCommit builds a commit on c's meta ref with the given tree.
func (g *noteDbGen) metaCommit(c *genChange, author int, tree, msg string) GitObject {
	var b strings.Builder
	fmt.Fprintf(&b, "tree %s\n", tree)
	if c.meta != "" {
		fmt.Fprintf(&b, "parent %s\n", c.meta)
	}
	t := g.tick()
	fmt.Fprintf(&b, "author %s %d +0000\ncommitter Gerrit Code Review <gerrit@example.com> %d +0000\n\n%s", g.user(author), t, t, msg)
	return newObject("commit", []byte(b.String()))
}

func (g *noteDbGen) create(c *genChange) {
	ps, objs := g.patchSet(c, 1)
	c.patchSets = append(c.patchSets, ps.ID)
	emptyTree := makeTree(nil)
	msg := fmt.Sprintf("Create change\n\nUploaded patch set 1.\n\nPatch-set: 1\nChange-id: I%s\nSubject: %s\nBranch: refs/heads/master\nStatus: new\nTopic: \nCommit: %s\nTag: autogenerated:gerrit:newPatchSet\nGroups: %s\nPrivate: false\nWork-in-progress: false\n",
		g.hexID(20), g.sentence(3, 8), ps.ID, ps.ID)
	meta := g.metaCommit(c, c.owner, emptyTree.ID, msg)
	c.meta = meta.ID
	objs = append(objs, emptyTree, meta)
	g.writes = append(g.writes, NoteDbWrite{Kind: "create", Objects: objs, Updates: []NoteDbUpdate{
		{Ref: changeRef(c.num, "1"), Old: refmove.ZeroID, New: ps.ID},
		{Ref: changeRef(c.num, "meta"), Old: refmove.ZeroID, New: meta.ID},
	}})
}

// comment returns one comment in Gerrit's JSON note format.
func (g *noteDbGen) comment(c *genChange, ps int, author int, parent string) string {
	line := 1 + g.rng.IntN(200)
	var b strings.Builder
	fmt.Fprintf(&b, "    {\n      \"key\": {\n        \"uuid\": \"%s_%s\",\n        \"filename\": \"src/Change%d.java\",\n        \"patchSetId\": %d\n      },\n",
		g.hexID(4), g.hexID(4), c.num, ps)
	fmt.Fprintf(&b, "      \"lineNbr\": %d,\n      \"author\": {\n        \"id\": %d\n      },\n      \"writtenOn\": \"2020-%02d-%02dT%02d:%02d:%02dZ\",\n      \"side\": 1,\n",
		line, author, 1+g.rng.IntN(12), 1+g.rng.IntN(28), g.rng.IntN(24), g.rng.IntN(60), g.rng.IntN(60))
	fmt.Fprintf(&b, "      \"message\": %q,\n", g.sentence(2, 40))
	if parent != "" {
		fmt.Fprintf(&b, "      \"parentUuid\": %q,\n", parent)
	}
	if g.rng.IntN(2) == 0 {
		fmt.Fprintf(&b, "      \"range\": {\n        \"startLine\": %d,\n        \"startChar\": %d,\n        \"endLine\": %d,\n        \"endChar\": %d\n      },\n",
			line, g.rng.IntN(40), line, 40+g.rng.IntN(40))
	}
	fmt.Fprintf(&b, "      \"revId\": %q,\n      \"serverId\": %q,\n      \"unresolved\": %v\n    }", c.patchSets[ps-1], g.serverID, g.rng.IntN(2) == 0)
	return b.String()
}

// notesTree builds a notes map: one JSON blob per patch-set commit.
func notesTree(notes map[string][]string) (GitObject, []GitObject) {
	var entries []treeEntry
	var blobs []GitObject
	for rev, cs := range notes {
		blob := newObject("blob", []byte("{\n  \"comments\": [\n"+strings.Join(cs, ",\n")+"\n  ]\n}"))
		blobs = append(blobs, blob)
		entries = append(entries, treeEntry{"100644", rev, blob.ID})
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].ID < blobs[j].ID })
	return makeTree(entries), blobs
}

func (g *noteDbGen) reviewer(c *genChange) int {
	if len(c.reviewers) == 0 || g.rng.IntN(3) == 0 {
		r := 1000000 + g.rng.IntN(40)
		c.reviewers = append(c.reviewers, r)
		return r
	}
	return c.reviewers[g.rng.IntN(len(c.reviewers))]
}

func (g *noteDbGen) event(c *genChange, last bool) {
	ps := len(c.patchSets)
	header := fmt.Sprintf("Update patch set %d\n\n", ps)
	metaWrite := func(author int, msg string, extra []GitObject, tree string, more ...NoteDbUpdate) {
		if tree == "" {
			tree = EmptyTreeID
			if len(c.notes) > 0 {
				t, _ := notesTree(c.notes)
				tree = t.ID
			}
		}
		old := c.meta
		m := g.metaCommit(c, author, tree, msg)
		c.meta = m.ID
		kind := "meta"
		if len(more) > 0 {
			kind = "patchset"
		}
		g.writes = append(g.writes, NoteDbWrite{Kind: kind, Objects: append(extra, m),
			Updates: append(more, NoteDbUpdate{Ref: changeRef(c.num, "meta"), Old: old, New: m.ID})})
	}
	if last {
		status, text, tag := "merged", "Change has been successfully merged", "merged"
		if g.rng.IntN(4) == 0 {
			status, text, tag = "abandoned", "Abandoned", "abandon"
		}
		r := g.reviewer(c)
		metaWrite(r, fmt.Sprintf("%s%s\n\nPatch-set: %d\nStatus: %s\nTag: autogenerated:gerrit:%s\nReviewer: %s\nLabel: SUBM=+1\nSubmission-id: %d-%d-%s\nSubmitted-with: OK\n",
			header, text, ps, status, tag, g.user(r), c.num, g.now*1000, g.hexID(4)), nil, "")
		return
	}
	switch k := g.rng.IntN(20); {
	case k < 4: // reviewers added
		var b strings.Builder
		for range 1 + g.rng.IntN(3) {
			fmt.Fprintf(&b, "Reviewer: %s\n", g.user(g.reviewer(c)))
		}
		metaWrite(c.owner, fmt.Sprintf("%sPatch-set: %d\n%s", header, ps, b.String()), nil, "")
	case k < 9: // a vote
		r := g.reviewer(c)
		label, v := "Code-Review", []string{"-2", "-1", "+1", "+2"}[g.rng.IntN(4)]
		if g.rng.IntN(3) == 0 {
			label, v = "Verified", []string{"-1", "+1"}[g.rng.IntN(2)]
		}
		metaWrite(r, fmt.Sprintf("%sPatch Set %d: %s%s\n\nPatch-set: %d\nReviewer: %s\nLabel: %s=%s\n",
			header, ps, label, v, ps, g.user(r), label, v), nil, "")
	case k < 15: // published comments, maybe with a vote
		r := g.reviewer(c)
		n := 1 + g.rng.IntN(3)
		rev := c.patchSets[ps-1]
		for range n {
			parent := ""
			if prev := c.notes[rev]; len(prev) > 0 && g.rng.IntN(2) == 0 {
				parent = g.hexID(4) + "_" + g.hexID(4)
			}
			c.notes[rev] = append(c.notes[rev], g.comment(c, ps, r, parent))
		}
		tree, blobs := notesTree(c.notes)
		var changed []GitObject
		for _, b := range blobs {
			if b.ID == HashObject("blob", []byte("{\n  \"comments\": [\n"+strings.Join(c.notes[rev], ",\n")+"\n  ]\n}")) {
				changed = append(changed, b)
			}
		}
		metaWrite(r, fmt.Sprintf("%sPatch Set %d:\n\n(%d comments)\n\nPatch-set: %d\nReviewer: %s\n", header, ps, n, ps, g.user(r)),
			append(changed, tree), tree.ID)
	case k < 17: // a new patch set: patch-set ref and meta in one write
		commit, objs := g.patchSet(c, ps+1)
		c.patchSets = append(c.patchSets, commit.ID)
		metaWrite(c.owner, fmt.Sprintf("Update patch set %d\n\nUploaded patch set %d.\n\nPatch-set: %d\nSubject: %s\nCommit: %s\nTag: autogenerated:gerrit:newPatchSet\nGroups: %s\n",
			ps+1, ps+1, ps+1, g.sentence(3, 8), commit.ID, c.patchSets[0]), objs, "",
			NoteDbUpdate{Ref: changeRef(c.num, fmt.Sprint(ps+1)), Old: refmove.ZeroID, New: commit.ID})
	default: // a draft comment, in All-Users' namespace
		acct := g.reviewer(c)
		rev := c.patchSets[ps-1]
		drafts := map[string][]string{rev: append(c.draftNote[acct], g.comment(c, ps, acct, ""))}
		c.draftNote[acct] = drafts[rev]
		tree, blobs := notesTree(drafts)
		var b strings.Builder
		fmt.Fprintf(&b, "tree %s\n", tree.ID)
		old := c.drafts[acct]
		if old != "" {
			fmt.Fprintf(&b, "parent %s\n", old)
		} else {
			old = refmove.ZeroID
		}
		t := g.tick()
		fmt.Fprintf(&b, "author %s %d +0000\ncommitter Gerrit Code Review <gerrit@example.com> %d +0000\n\nUpdate draft comments\n", g.user(acct), t, t)
		commit := newObject("commit", []byte(b.String()))
		c.drafts[acct] = commit.ID
		g.writes = append(g.writes, NoteDbWrite{Kind: "draft", Objects: append(blobs, tree, commit),
			Updates: []NoteDbUpdate{{Ref: fmt.Sprintf("refs/draft-comments/%02d/%d/%d", c.num%100, c.num, acct), Old: old, New: commit.ID}}})
	}
}

// GenerateNoteDb builds a bare repository holding every object of
// NoteDbWrites(s) and every ref at its final value, and returns its
// directory and the writes. The objects go in as one pack through
// `git index-pack --strict`, so C git vouches for what the generator built.
func GenerateNoteDb(tb testing.TB, e *GitEnv, s NoteDbShape) (string, []NoteDbWrite) {
	tb.Helper()
	writes := NoteDbWrites(s)
	dir := filepath.Join(tb.TempDir(), "notedb.git")
	e.Run(tb, "", "init", "--quiet", "--bare", "--initial-branch=master", dir)
	var objs []GitObject
	seen := map[string]bool{}
	final := map[string]string{}
	var order []string
	for _, w := range writes {
		for _, o := range w.Objects {
			if !seen[o.ID] {
				seen[o.ID] = true
				objs = append(objs, o)
			}
		}
		for _, u := range w.Updates {
			if _, ok := final[u.Ref]; !ok {
				order = append(order, u.Ref)
			}
			final[u.Ref] = u.New
		}
	}
	e.RunInput(tb, dir, WritePack(objs), "index-pack", "--stdin", "--strict")
	var in strings.Builder
	for _, ref := range order {
		fmt.Fprintf(&in, "create %s %s\n", ref, final[ref])
	}
	e.RunInput(tb, dir, []byte(in.String()), "update-ref", "--stdin")
	return dir, writes
}

// WritePack returns a pack (version 2, no deltas) holding objs.
func WritePack(objs []GitObject) []byte {
	var b bytes.Buffer
	b.WriteString("PACK")
	binary.Write(&b, binary.BigEndian, uint32(2))
	binary.Write(&b, binary.BigEndian, uint32(len(objs)))
	codes := map[string]byte{"commit": 1, "tree": 2, "blob": 3, "tag": 4}
	z := zlib.NewWriter(&b) // one compressor, reset per object: each holds ~1 MB of tables
	for _, o := range objs {
		b.Write(git.AppendObjectHeader(nil, codes[o.Type], len(o.Data)))
		z.Reset(&b)
		z.Write(o.Data)
		z.Close()
	}
	sum := sha1.Sum(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}
