package notedbfast

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

func TestMetrics(t *testing.T) {
	e := gittest.Env(t)
	ctx := ctxT(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	origin, writes := gittest.GenerateNoteDb(t, e, gittest.NoteDbShape{Changes: 2, Events: 3, Seed: 9})
	cat := git.NewCatFile(origin)
	t.Cleanup(func() { cat.Close() })
	cl, err := NewClassifier(Config{}, m)
	require.NoError(t, err)
	codec, err := NewCodec(Dictionary(), m)
	require.NoError(t, err)
	ap := NewApplier(m)
	t.Cleanup(func() { ap.Close() })
	peer := newBare(t, e)

	b := NewBatcher(BatcherConfig[Delta]{Observe: m.ObserveBatch, Size: func(d Delta) int64 { return d.RawBytes() }},
		func(ctx context.Context, ds []Delta, _ func()) []Result[struct{}] {
			rs := make([]Result[struct{}], len(ds))
			for i, err := range ap.ApplyBatch(ctx, peer, ds) {
				rs[i].Err = err
			}
			return rs
		})
	defer b.Close()

	var deltas, packs int
	for _, w := range writes {
		c, err := cl.Classify(ctx, cat, toUpdates(w))
		require.NoError(t, err)
		if c.Path == PathPack {
			packs++
			e.RunInput(t, peer, gittest.WritePack(w.Objects), "index-pack", "--stdin")
		} else {
			deltas++
			d := Delta{Project: "p", Txn: "t", Objects: c.Objects, Updates: toUpdates(w)}
			frame, err := codec.Encode(d)
			require.NoError(t, err)
			got, err := codec.Decode(frame, Limits{})
			require.NoError(t, err)
			_, err = b.Submit(ctx, got[0])
			require.NoError(t, err)
		}
		moveRefs(t, e, peer, toUpdates(w))
	}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range mt.GetLabel() {
				key += "/" + l.GetValue()
			}
			if c := mt.GetCounter(); c != nil {
				got[key] = c.GetValue()
			}
			if h := mt.GetHistogram(); h != nil {
				got[key] = float64(h.GetSampleCount())
			}
		}
	}
	require.Equal(t, map[string]float64{
		"sitesync_notedb_writes_total/delta": float64(deltas),
		"sitesync_notedb_writes_total/pack":  float64(packs),
		"sitesync_notedb_delta_raw_bytes":    float64(deltas),
		"sitesync_notedb_delta_frame_bytes":  float64(deltas),
		"sitesync_notedb_batch_writes":       float64(deltas),
		"sitesync_notedb_batch_bytes":        float64(deltas),
		"sitesync_notedb_apply_seconds":      float64(deltas),
	}, got)
}
