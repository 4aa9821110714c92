package notedbfast

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

var corpus = flag.String("corpus", "", "a git bundle of a real Gerrit repository (e.g. ../../../shared/corpus/plugins_high-availability.bundle) to replay its NoteDb meta history through deltas")

// corpusMetas bounds how many changes the replay takes, so the opt-in test
// stays a test (about a minute); -corpus.all replays every change.
var corpusAll = flag.Bool("corpus.all", false, "replay every change of -corpus, not the first 300")

// TestCorpusReplay replays the meta commits of a real Gerrit repository,
// oldest first per change, through deltas into a peer that holds
// everything else of the repository, and checks the peer ends with the
// same meta refs, fsck-clean, and reports the compression achieved.
func TestCorpusReplay(t *testing.T) {
	if *corpus == "" {
		t.Skip("opt-in: pass -corpus PATH (e.g. -corpus ../../../shared/corpus/plugins_high-availability.bundle)")
	}
	if _, err := os.Stat(*corpus); err != nil {
		t.Skipf("corpus %s is absent: %v", *corpus, err)
	}
	e := gittest.Env(t)
	ctx := ctxT(t)
	origin := filepath.Join(t.TempDir(), "origin.git")
	e.Run(t, "", "clone", "--quiet", "--mirror", *corpus, origin)

	// The peer starts with every object except the meta histories: a pack
	// of all non-meta refs.
	refs := e.Refs(t, origin)
	var metas, others []string
	for ref, id := range refs {
		if strings.HasSuffix(ref, "/meta") && strings.HasPrefix(ref, "refs/changes/") {
			metas = append(metas, ref)
		} else {
			others = append(others, id)
		}
	}
	sort.Strings(metas)
	if !*corpusAll && len(metas) > 300 {
		metas = metas[:300]
	}
	peer := newBare(t, e)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(git.PackObjects(ctx, origin, others, nil, pw)) }()
	_, err := git.IndexPack(ctx, peer, pr, git.IndexPackOptions{})
	require.NoError(t, err)

	cat := git.NewCatFile(origin)
	t.Cleanup(func() { cat.Close() })
	cl, err := NewClassifier(Config{}, nil)
	require.NoError(t, err)
	ap := NewApplier(nil)
	t.Cleanup(func() { ap.Close() })
	plain, err := NewCodec(nil, nil)
	require.NoError(t, err)

	var ratios []float64
	var batch []Delta
	batchedFrames := 0
	const batchSize = 16 // a loaded site's group commit
	var raw, framed, framedPlain, updates, packs int
	for _, ref := range metas {
		out := e.Run(t, origin, "rev-list", "--reverse", "--first-parent", ref)
		old := refmove.ZeroID
		for _, id := range strings.Fields(out) {
			u := Update{Ref: ref, Old: old, New: id}
			c, err := cl.Classify(ctx, cat, []Update{u})
			require.NoError(t, err)
			if c.Path != PathDelta {
				packs++ // over max_bytes: the pack path would carry it
				var haves []string
				if old != refmove.ZeroID {
					haves = append(haves, old)
				}
				var pack bytes.Buffer
				require.NoError(t, git.PackObjects(ctx, origin, []string{id}, haves, &pack))
				_, err = git.IndexPack(ctx, peer, &pack, git.IndexPackOptions{})
				require.NoError(t, err)
			} else {
				d := Delta{Project: "plugins/high-availability", Txn: fmt.Sprint(updates), Objects: c.Objects, Updates: []Update{u}}
				frame, err := Encode(d)
				require.NoError(t, err)
				fp, err := plain.Encode(d)
				require.NoError(t, err)
				raw += int(c.Bytes)
				framed += len(frame)
				framedPlain += len(fp)
				ratios = append(ratios, float64(len(frame))/float64(c.Bytes))
				if batch = append(batch, d); len(batch) == batchSize {
					f, err := Encode(batch...)
					require.NoError(t, err)
					batchedFrames += len(f)
					batch = nil
				}
				ds, err := Decode(frame, Limits{})
				require.NoError(t, err)
				require.NoError(t, ap.Apply(ctx, peer, ds[0]), "%s at %s", ref, id)
			}
			updates++
			old = id
		}
		e.Run(t, peer, "update-ref", ref, old, "")
	}
	for _, ref := range metas {
		require.Equal(t, refs[ref], strings.TrimSpace(e.Run(t, peer, "rev-parse", ref)))
	}
	e.Run(t, peer, "fsck", "--strict", "--connectivity-only")
	for _, d := range batch {
		f, err := Encode(d)
		require.NoError(t, err)
		batchedFrames += len(f)
	}
	sort.Float64s(ratios)
	t.Logf("%d changes, %d meta updates (%d over max_bytes went as packs); delta object bytes %d -> %d framed with dictionary (%.3f), %d without (%.3f); median frame/raw %.3f, p90 %.3f; in frames of %d updates %d (%.3f)",
		len(metas), updates, packs, raw, framed, float64(framed)/float64(raw), framedPlain, float64(framedPlain)/float64(raw),
		ratios[len(ratios)/2], ratios[len(ratios)*9/10], batchSize, batchedFrames, float64(batchedFrames)/float64(raw))
}
