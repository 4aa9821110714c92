package coord_test

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/coord"
	"github.com/sitesync/sitesync/internal/site"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
	"github.com/sitesync/sitesync/internal/testkit/sitetest"
)

func TestMain(m *testing.M) { sitetest.HookMain(m) }

const zeroID = "0000000000000000000000000000000000000000"

// cluster runs an in-process cluster until the test ends.
func cluster(tb testing.TB, opts site.LocalOptions) *site.Local {
	tb.Helper()
	return sitetest.Start(tb, opts, slog.LevelInfo)
}

func repoDir(l *site.Local, s *site.Site, project string) string {
	return filepath.Join(l.Dir, s.Name(), "repos", project+".git")
}

// post is the write API over HTTP: status and body.
func post(tb testing.TB, url, project string, ups []coord.Update) (int, string) {
	tb.Helper()
	b, _ := json.Marshal(map[string]any{"updates": ups})
	resp, err := http.Post(url+"/api/v1/projects/"+strings.ReplaceAll(project, "/", "%2F")+"/refs", "application/json", strings.NewReader(string(b)))
	require.NoError(tb, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// loadObjects puts objects into the repository at dir, as a writer (Gerrit)
// does before it moves refs.
func loadObjects(tb testing.TB, e *gittest.GitEnv, dir string, objs []gittest.GitObject) {
	tb.Helper()
	e.RunInput(tb, dir, gittest.WritePack(objs), "index-pack", "--stdin", "--strict")
}

// requireConverged waits until every site holds want, then runs git fsck
// --strict on each.
func requireConverged(tb testing.TB, e *gittest.GitEnv, l *site.Local, project string, want map[string]string) {
	tb.Helper()
	for _, s := range l.Sites {
		dir := repoDir(l, s, project)
		var got map[string]string
		deadline := time.Now().Add(30 * time.Second)
		for {
			got = e.Refs(tb, dir)
			if fmt.Sprint(got) == fmt.Sprint(want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		require.Equal(tb, want, got, "site %s", s.Name())
		e.Run(tb, dir, "fsck", "--strict", "--no-dangling")
	}
}

// metric sums the samples of name (whose labels contain filter) that a
// site's /metrics shows.
func metric(tb testing.TB, url, name, filter string) float64 {
	tb.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(tb, err)
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		n, labels, _ := strings.Cut(key, "{")
		if n != name || !strings.Contains(labels, filter) {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		require.NoError(tb, err)
		sum += v
	}
	return sum
}

func updatesOf(w gittest.NoteDbWrite) []coord.Update {
	var ups []coord.Update
	for _, u := range w.Updates {
		ups = append(ups, coord.Update{Ref: u.Ref, Old: u.Old, New: u.New})
	}
	return ups
}

// TestNoteDbHistoryReplicates replays a generated NoteDb history at site a
// through the write API: NoteDb-only writes go as deltas, the others (and
// an oversized NoteDb write) as packs, and every site ends with a's refs,
// fsck-clean.
func TestNoteDbHistoryReplicates(t *testing.T) {
	for _, mode := range []string{"async", "quorum"} {
		t.Run("mode="+mode, func(t *testing.T) {
			l := cluster(t, site.LocalOptions{Sites: 3, Mode: mode})
			e := gittest.Env(t)
			a := l.Sites[0]
			const project = "gerrit/notedb"
			sitetest.CreateProject(t, a.URL(), project)
			dir := repoDir(l, a, project)
			writes := gittest.NoteDbWrites(gittest.NoteDbShape{Changes: 10, Events: 8, Seed: 11})
			want := map[string]string{}
			var deltas, packs int
			for i, w := range writes {
				loadObjects(t, e, dir, w.Objects)
				code, body := post(t, a.URL(), project, updatesOf(w))
				require.Equal(t, http.StatusOK, code, "write %d (%s): %s", i, w.Kind, body)
				for _, u := range w.Updates {
					want[u.Ref] = u.New
				}
				if w.NoteDbOnly() {
					deltas++
				} else {
					packs++
				}
			}
			// A NoteDb write above notedb.max_bytes goes as a pack.
			big := make([]byte, 100<<10)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range big {
				big[i] = byte('a' + rng.IntN(26))
			}
			blob := gittest.GitObject{Type: "blob", ID: gittest.HashObject("blob", big), Data: big}
			tree := treeOf(map[string]string{"big.txt": blob.ID})
			commit := commitObj(tree.ID, "", "Large account data\n", 1)
			loadObjects(t, e, dir, []gittest.GitObject{blob, tree, commit})
			code, body := post(t, a.URL(), project, []coord.Update{{Ref: "refs/users/01/1000001", Old: zeroID, New: commit.ID}})
			require.Equal(t, http.StatusOK, code, body)
			want["refs/users/01/1000001"] = commit.ID
			packs++

			requireConverged(t, e, l, project, want)
			require.Equal(t, float64(deltas), metric(t, a.URL(), "sitesync_notedb_writes_total", `path="delta"`))
			require.Equal(t, float64(packs), metric(t, a.URL(), "sitesync_notedb_writes_total", `path="pack"`))
			raw := metric(t, a.URL(), "sitesync_notedb_delta_raw_bytes_sum", "")
			frame := metric(t, a.URL(), "sitesync_notedb_delta_frame_bytes_sum", "")
			t.Logf("%d writes: %d deltas, %d packs; delta frames %.0f bytes for %.0f raw (%.2f)", len(writes)+1, deltas, packs, frame, raw, frame/raw)
			forms := map[string]float64{}
			for _, f := range []string{"entry", "versions", "frame", "based", "spelled"} {
				forms[f] = metric(t, a.URL(), "sitesync_notedb_commit_deltas_total", `form="`+f+`"`)
			}
			t.Logf("COMMIT-DELTAs by form: %v; prepares sent again plain: %.0f", forms, metric(t, a.URL(), "sitesync_notedb_resends_total", `how="plain"`))
			// Lone writes that build on the previous one go against it:
			// in async mode every peer gets based frames, in quorum mode
			// peers that prepared get the versions named in their entry.
			if mode == "async" {
				require.Greater(t, forms["based"], 0.0)
			} else {
				require.Greater(t, forms["entry"], 0.0)
			}
			// Counted as sent; in quorum mode none came back refused and
			// spelled out. (In async mode a few based frames are refused —
			// 2 of 134 in one run — and spelled out: a peer then fetches.)
			if mode != "async" {
				require.Zero(t, forms["spelled"], "named COMMIT-DELTAs the peers refused")
			} else {
				require.Less(t, forms["spelled"], forms["based"], "most based frames are read")
			}
		})
	}
}

// synthetic NoteDb meta updates: per change, a chain of meta commits
// (footers, sometimes a comment note), built in memory.

func treeOf(entries map[string]string) gittest.GitObject {
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		raw, _ := hex.DecodeString(entries[n])
		b.WriteString("100644 " + n + "\x00")
		b.Write(raw)
	}
	return gittest.GitObject{Type: "tree", ID: gittest.HashObject("tree", []byte(b.String())), Data: []byte(b.String())}
}

func commitObj(tree, parent, msg string, t int64) gittest.GitObject {
	var b strings.Builder
	fmt.Fprintf(&b, "tree %s\n", tree)
	if parent != "" {
		fmt.Fprintf(&b, "parent %s\n", parent)
	}
	ts := 1600000000 + t
	fmt.Fprintf(&b, "author Gerrit User %d <%d@173816e5-2b9a-37c3-8a2e-48639d4f1153> %d +0000\n", 1000000+t%40, 1000000+t%40, ts)
	fmt.Fprintf(&b, "committer Gerrit Code Review <gerrit@example.com> %d +0000\n\n%s", ts, msg)
	return gittest.GitObject{Type: "commit", ID: gittest.HashObject("commit", []byte(b.String())), Data: []byte(b.String())}
}

// metaWrite is one synthetic meta update.
type metaWrite struct {
	Ref     string
	Old     string
	New     string
	Objects []gittest.GitObject
}

func (w metaWrite) updates() []coord.Update {
	return []coord.Update{{Ref: w.Ref, Old: w.Old, New: w.New}}
}

func (w metaWrite) rawBytes() int {
	n := 0
	for _, o := range w.Objects {
		n += len(o.Data)
	}
	return n
}

var (
	labels   = []string{"Code-Review=+1", "Code-Review=+2", "Code-Review=-1", "Verified=+1", "Verified=-1"}
	words    = strings.Fields("the this patch set change looks good to me but please fix nit here there tests fail pass rebase needed why not use helper function instead of duplicating logic consider renaming variable")
	subjects = []string{"Update patch set 1", "Update patch set 2", "Update patch set 3"}
)

// metaChanges builds nUpdates meta updates for each of nChanges changes
// numbered from first; writes[c] are change c's in order.
func metaChanges(nChanges, nUpdates, first int, seed uint64) [][]metaWrite {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([][]metaWrite, nChanges)
	t := int64(0)
	for c := range nChanges {
		num := first + c
		ref := fmt.Sprintf("refs/changes/%02d/%d/meta", num%100, num)
		parent := ""
		notes := map[string]string{}
		for k := range nUpdates {
			t += int64(1 + rng.IntN(300))
			var objs []gittest.GitObject
			var msg strings.Builder
			msg.WriteString(subjects[rng.IntN(len(subjects))] + "\n\n")
			if rng.IntN(3) == 0 {
				var text strings.Builder
				for range 5 + rng.IntN(25) {
					text.WriteString(words[rng.IntN(len(words))] + " ")
				}
				ps := fmt.Sprintf("%040x", rng.Uint64())
				blob := []byte(fmt.Sprintf(`{"comments":[{"key":{"uuid":"%x","filename":"src/main/java/Foo.java","patchSetId":1},"lineNbr":%d,"author":{"id":%d},"writtenOn":"2020-09-13 12:26:%02d.000000000","side":1,"message":%q,"range":{"startLine":%d,"startChar":0,"endLine":%d,"endChar":10},"revId":"%s","serverId":"173816e5-2b9a-37c3-8a2e-48639d4f1153","unresolved":%v}]}`,
					rng.Uint64(), 1+rng.IntN(500), 1000000+rng.IntN(40), k%60, strings.TrimSpace(text.String()), 10, 12, ps, rng.IntN(2) == 0))
				b := gittest.GitObject{Type: "blob", ID: gittest.HashObject("blob", blob), Data: blob}
				notes[ps] = b.ID
				objs = append(objs, b)
				msg.WriteString("Patch-set: 1\n")
			} else {
				fmt.Fprintf(&msg, "Patch-set: 1\nLabel: %s\n", labels[rng.IntN(len(labels))])
			}
			fmt.Fprintf(&msg, "Attention: {\"person_ident\":\"Gerrit User %d \\u003c%d@173816e5-2b9a-37c3-8a2e-48639d4f1153\\u003e\",\"operation\":\"ADD\",\"reason\":\"\\u003cGERRIT_ACCOUNT_%d\\u003e replied on the change\"}\n",
				1000000+rng.IntN(40), 1000000+rng.IntN(40), 1000000+rng.IntN(40))
			tree := treeOf(notes)
			if len(notes) == 0 {
				tree = gittest.GitObject{Type: "tree", ID: gittest.EmptyTreeID, Data: []byte{}}
			}
			objs = append(objs, tree)
			commit := commitObj(tree.ID, parent, msg.String(), t)
			objs = append(objs, commit)
			old := parent
			if old == "" {
				old = zeroID
			}
			out[c] = append(out[c], metaWrite{Ref: ref, Old: old, New: commit.ID, Objects: objs})
			parent = commit.ID
		}
	}
	return out
}

func allObjects(changes [][]metaWrite) []gittest.GitObject {
	seen := map[string]bool{}
	var out []gittest.GitObject
	for _, ws := range changes {
		for _, w := range ws {
			for _, o := range w.Objects {
				if !seen[o.ID] {
					seen[o.ID] = true
					out = append(out, o)
				}
			}
		}
	}
	return out
}

func finalRefs(changes [][]metaWrite) map[string]string {
	want := map[string]string{}
	for _, ws := range changes {
		want[ws[len(ws)-1].Ref] = ws[len(ws)-1].New
	}
	return want
}

// TestNoteDbConcurrentBatches: concurrent writers to distinct changes are
// coalesced into batches, every write gets its own result, and a write
// with a wrong old value conflicts alone.
func TestNoteDbConcurrentBatches(t *testing.T) {
	for _, tc := range []struct {
		mode string
		acks int
	}{{"async", 1}, {"quorum", 2}} {
		t.Run("mode="+tc.mode, func(t *testing.T) { concurrentBatches(t, tc.mode, tc.acks) })
	}
}

func concurrentBatches(t *testing.T, mode string, acks int) {
	l := cluster(t, site.LocalOptions{Sites: 3, Mode: mode})
	e := gittest.Env(t)
	a := l.Sites[0]
	const project = "gerrit/busy"
	sitetest.CreateProject(t, a.URL(), project)
	changes := metaChanges(64, 6, 2001, 5)
	loadObjects(t, e, repoDir(l, a, project), allObjects(changes))

	ctx := t.Context()
	var wg sync.WaitGroup
	var mu sync.Mutex
	txns := map[string]bool{}
	var conflicts int
	for g := range 32 {
		wg.Go(func() {
			for _, c := range []int{g, g + 32} {
				for k, w := range changes[c] {
					if k == 3 && c%8 == 0 {
						// A stale writer: expects the value before the
						// last one. It must conflict, alone.
						stale := w.updates()
						stale[0].Old = changes[c][1].Old
						if c%16 == 0 {
							// Through the API: 409 names the ref.
							code, body, err := postNoFail(a.URL(), project, stale)
							mu.Lock()
							if err == nil && code == http.StatusConflict && strings.Contains(body, w.Ref+" was updated at site a") {
								conflicts++
							} else {
								t.Errorf("stale write to %s: %d %s %v, want 409", w.Ref, code, body, err)
							}
							mu.Unlock()
						} else {
							_, err := a.Coord().Write(ctx, project, stale)
							mu.Lock()
							if errors.Is(err, coord.ErrConflict) {
								conflicts++
							} else {
								t.Errorf("stale write to %s: %v, want a conflict", w.Ref, err)
							}
							mu.Unlock()
						}
					}
					res, err := a.Coord().Write(ctx, project, w.updates())
					if err != nil {
						t.Errorf("write %d of %s: %v", k, w.Ref, err)
						return
					}
					if len(res.Versions) != 1 || res.Versions[0].Ref != w.Ref || res.Versions[0].Value != w.New || res.Versions[0].Version != uint64(k+1) || len(res.Acks) < acks {
						t.Errorf("write %d of %s: result %+v", k, w.Ref, res)
					}
					mu.Lock()
					txns[res.Txn] = true
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, 8, conflicts)
	requireConverged(t, e, l, project, finalRefs(changes))

	writes := metric(t, a.URL(), "sitesync_notedb_batch_writes_sum", "")
	batches := metric(t, a.URL(), "sitesync_notedb_batch_writes_count", "")
	t.Logf("%.0f writes in %.0f batches (%.1f per batch), %d distinct refdb txns", writes, batches, writes/batches, len(txns))
	require.Greater(t, writes/batches, 1.0, "concurrent writes were not batched")
	require.Equal(t, float64(64*6+8), metric(t, a.URL(), "sitesync_notedb_writes_total", `path="delta"`))
}

// postNoFail is post for goroutines other than the test's.
func postNoFail(url, project string, ups []coord.Update) (int, string, error) {
	b, _ := json.Marshal(map[string]any{"updates": ups})
	resp, err := http.Post(url+"/api/v1/projects/"+strings.ReplaceAll(project, "/", "%2F")+"/refs", "application/json", strings.NewReader(string(b)))
	if err != nil {
		return 0, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body), err
}

// TestNoteDbChain: a peer that lacks the parent of a delta (here its copy
// of the previous meta commit was lost and its ref rewound, as after a
// restore from an old backup) gets the chain back to what it has, votes,
// and ends identical.
func TestNoteDbChain(t *testing.T) {
	l := cluster(t, site.LocalOptions{Sites: 3, Mode: "sync"})
	e := gittest.Env(t)
	a, c := l.Sites[0], l.Sites[2]
	const project = "gerrit/chain"
	sitetest.CreateProject(t, a.URL(), project)
	changes := metaChanges(1, 4, 3001, 9)
	ws := changes[0]
	// The first writes replicate everywhere.
	for _, w := range ws[:3] {
		writeAt(t, e, l, a, project, w)
	}
	requireConverged(t, e, l, project, map[string]string{ws[2].Ref: ws[2].New})
	// A NoteDb write whose objects are not at a is refused, and nothing moves.
	code, body := post(t, a.URL(), project, []coord.Update{{Ref: "refs/changes/99/3099/meta", Old: zeroID, New: strings.Repeat("ab", 20)}})
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "at site a: classify: read abab")
	// c loses the last two meta commits (loose objects, as the fast path
	// wrote them) and its ref goes back to the first.
	rewind(t, e, repoDir(l, c, project), ws[0], ws[1:3])
	w := ws[3]
	body = writeAt(t, e, l, a, project, w)
	require.Contains(t, body, `"c"`, "sync mode: c voted")
	require.Equal(t, 1.0, metric(t, a.URL(), "sitesync_notedb_resends_total", `how="chain"`))
	// The prepare went against the commit c lost: c named it, and got
	// the plain frame before the chain.
	require.Equal(t, 1.0, metric(t, a.URL(), "sitesync_notedb_resends_total", `how="plain"`))
	requireConverged(t, e, l, project, map[string]string{w.Ref: w.New})
}

// writeAt puts w's objects into s's repository, as Gerrit would, and
// writes w through s's API, which must answer 200; it returns the body.
func writeAt(tb testing.TB, e *gittest.GitEnv, l *site.Local, s *site.Site, project string, w metaWrite) string {
	tb.Helper()
	loadObjects(tb, e, repoDir(l, s, project), w.Objects)
	code, body := post(tb, s.URL(), project, w.updates())
	require.Equal(tb, http.StatusOK, code, body)
	return body
}

// rewind makes a peer lose writes: its ref goes back to to's value and the
// meta commits of lost go, wherever they are stored (loose, as the fast
// path writes them, or packed, when the peer fetched them).
func rewind(tb testing.TB, e *gittest.GitEnv, dir string, to metaWrite, lost []metaWrite) {
	tb.Helper()
	e.Run(tb, dir, "update-ref", to.Ref, to.New)
	e.Run(tb, dir, "repack", "-a", "-d", "-q")
	e.Run(tb, dir, "prune", "--expire=now")
	for _, w := range lost {
		for _, o := range w.Objects {
			if o.Type == "commit" {
				_, err := e.Try(dir, "cat-file", "-e", o.ID)
				require.Error(tb, err, "commit %s of a lost write is still at the peer", o.ID)
			}
		}
	}
}

// TestNoteDbAsyncMissingBase: in async mode a peer that lacks the commit a
// COMMIT-DELTA's frame is compressed against (its copy was lost and its
// ref rewound) refuses the frame; the origin spells the versions out, the
// peer fetches the objects, and every site ends identical.
func TestNoteDbAsyncMissingBase(t *testing.T) {
	l := cluster(t, site.LocalOptions{Sites: 3, Mode: "async"})
	e := gittest.Env(t)
	a, c := l.Sites[0], l.Sites[2]
	const project = "gerrit/based"
	sitetest.CreateProject(t, a.URL(), project)
	ws := metaChanges(1, 4, 5001, 13)[0]
	for _, w := range ws[:3] {
		writeAt(t, e, l, a, project, w)
	}
	requireConverged(t, e, l, project, map[string]string{ws[2].Ref: ws[2].New})
	// Under load an earlier COMMIT-DELTA may have been spelled out already
	// (its predecessor's objects came late): count from here.
	before := metric(t, a.URL(), "sitesync_notedb_commit_deltas_total", `form="spelled"`)
	rewind(t, e, repoDir(l, c, project), ws[0], ws[1:3])
	w := ws[3]
	writeAt(t, e, l, a, project, w)
	requireConverged(t, e, l, project, map[string]string{w.Ref: w.New})
	require.Equal(t, before+1, metric(t, a.URL(), "sitesync_notedb_commit_deltas_total", `form="spelled"`))
}

// TestNoteDbPackFallback: a peer that lacks more history than a chain may
// carry (here 19 meta updates of ~60 KiB each, over the 1 MiB bound) gets a
// pack of what it lacks instead, votes, and ends identical.
func TestNoteDbPackFallback(t *testing.T) {
	l := cluster(t, site.LocalOptions{Sites: 3, Mode: "sync"})
	e := gittest.Env(t)
	a, c := l.Sites[0], l.Sites[2]
	const project = "gerrit/fallback"
	sitetest.CreateProject(t, a.URL(), project)
	const ref = "refs/changes/01/4001/meta"
	rng := rand.New(rand.NewPCG(4, 5))
	notes := map[string]string{}
	parent := zeroID
	var ws []metaWrite
	for k := range 21 {
		var objs []gittest.GitObject
		if k > 0 && k < 20 {
			data := make([]byte, 60_000)
			for i := range data {
				data[i] = byte('a' + rng.IntN(26))
			}
			blob := gittest.GitObject{Type: "blob", ID: gittest.HashObject("blob", data), Data: data}
			notes[fmt.Sprintf("%040x", k)] = blob.ID
			objs = append(objs, blob)
		}
		tree := gittest.GitObject{Type: "tree", ID: gittest.EmptyTreeID, Data: []byte{}}
		if len(notes) > 0 {
			tree = treeOf(notes)
		}
		p := parent
		if p == zeroID {
			p = ""
		}
		commit := commitObj(tree.ID, p, fmt.Sprintf("Update patch set 1\n\nPatch-set: 1\nLabel: Code-Review=+%d\n", k%3), int64(k))
		objs = append(objs, tree, commit)
		ws = append(ws, metaWrite{Ref: ref, Old: parent, New: commit.ID, Objects: objs})
		parent = commit.ID
	}
	adir, cdir := repoDir(l, a, project), repoDir(l, c, project)
	for _, w := range ws[:20] {
		loadObjects(t, e, adir, w.Objects)
		code, body := post(t, a.URL(), project, w.updates())
		require.Equal(t, http.StatusOK, code, body)
	}
	requireConverged(t, e, l, project, map[string]string{ref: ws[19].New})
	require.Equal(t, 20.0, metric(t, a.URL(), "sitesync_notedb_writes_total", `path="delta"`))
	// c loses updates 2..20 (loose objects, as the fast path wrote them)
	// and its ref goes back to the first.
	e.Run(t, cdir, "update-ref", ref, ws[0].New)
	for _, w := range ws[1:20] {
		for _, o := range w.Objects {
			if o.ID == gittest.EmptyTreeID {
				continue
			}
			p := filepath.Join(cdir, "objects", o.ID[:2], o.ID[2:])
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				require.NoError(t, err)
			}
		}
	}
	out, err := e.Try(cdir, "cat-file", "-e", ws[19].New)
	require.Error(t, err, "c still has the last update: %s", out)

	w := ws[20]
	loadObjects(t, e, adir, w.Objects)
	code, body := post(t, a.URL(), project, w.updates())
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"c"`, "sync mode: c voted")
	require.Equal(t, 1.0, metric(t, a.URL(), "sitesync_notedb_resends_total", `how="pack"`))
	require.Equal(t, 1.0, metric(t, a.URL(), "sitesync_notedb_resends_total", `how="plain"`))
	requireConverged(t, e, l, project, map[string]string{ref: w.New})
}
