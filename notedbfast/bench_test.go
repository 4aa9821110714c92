package notedbfast

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"

	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// benchShape differs in seed, server id and change numbers from what
// internal/gendict trains the dictionary on.
var benchShape = gittest.NoteDbShape{Changes: 40, Events: 12, Seed: 42, ServerID: "0b5e11a2-7c4d-3f08-9a61-d2c3b4a5f607"}

// compressionStats returns the median and p90 of compressed/raw per update.
func compressionStats(tb testing.TB, c *Codec, ds []Delta) (median, p90 float64, raw, frame int) {
	tb.Helper()
	ratios := make([]float64, 0, len(ds))
	for _, d := range ds {
		f, err := c.Encode(d)
		if err != nil {
			tb.Fatal(err)
		}
		raw += int(d.RawBytes())
		frame += len(f)
		ratios = append(ratios, float64(len(f))/float64(d.RawBytes()))
	}
	sort.Float64s(ratios)
	return ratios[len(ratios)/2], ratios[len(ratios)*9/10], raw, frame
}

func TestCompressionRatio(t *testing.T) {
	ds := genDeltas(t, benchShape)
	dict, err := NewCodec(Dictionary(), nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := NewCodec(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, p, raw, frame := compressionStats(t, dict, ds)
	t.Logf("dictionary: %d updates, median frame/raw %.3f, p90 %.3f, total %d -> %d bytes", len(ds), m, p, raw, frame)
	if m > 0.5 {
		t.Errorf("median compressed/raw %.3f with the dictionary, want ≤ 0.5", m)
	}
	m, p, raw, frame = compressionStats(t, plain, ds)
	t.Logf("no dictionary: median frame/raw %.3f, p90 %.3f, total %d -> %d bytes", m, p, raw, frame)
}

// benchCodec is a codec with the built-in dictionary, or without one.
func benchCodec(b *testing.B, withDict bool) *Codec {
	b.Helper()
	var dict []byte
	if withDict {
		dict = Dictionary()
	}
	c, err := NewCodec(dict, nil)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkEncode(b *testing.B) {
	ds := genDeltas(b, benchShape)
	for _, withDict := range []bool{true, false} {
		c := benchCodec(b, withDict)
		b.Run(fmt.Sprintf("dict=%v", withDict), func(b *testing.B) {
			b.ReportAllocs()
			var raw, out int64
			i := 0
			for b.Loop() {
				d := ds[i%len(ds)]
				i++
				f, err := c.Encode(d)
				if err != nil {
					b.Fatal(err)
				}
				raw += d.RawBytes()
				out += int64(len(f))
			}
			b.ReportMetric(float64(out)/float64(raw), "frame/raw")
			b.ReportMetric(float64(raw)/float64(i), "raw-B/update")
		})
	}
}

func BenchmarkDecodeVerify(b *testing.B) {
	ds := genDeltas(b, benchShape)
	for _, withDict := range []bool{true, false} {
		c := benchCodec(b, withDict)
		frames := make([][]byte, len(ds))
		for i, d := range ds {
			var err error
			if frames[i], err = c.Encode(d); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("dict=%v", withDict), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				got, err := c.Decode(frames[i%len(frames)], Limits{})
				i++
				if err != nil {
					b.Fatal(err)
				}
				for _, o := range got[0].Objects {
					if _, err := Verify(o); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkApply measures updates/s written durably into a repository,
// batch=N deltas per ApplyBatch (one round of fsyncs per batch).
func BenchmarkApply(b *testing.B) {
	e := gittest.Env(b)
	ds, other := genHistory(b, gittest.NoteDbShape{Changes: 200, Events: 12, Seed: 43})
	pack := gittest.WritePack(other)
	newRepo := func() string {
		repo := newBare(b, e)
		e.RunInput(b, repo, pack, "index-pack", "--stdin")
		return repo
	}
	stores := []Store{StoreLoose, StorePack, StoreAuto}
	if benchIndexPack {
		stores = append(stores, storeIndexPack)
	}
	type benchCase struct {
		store Store
		batch int
	}
	var cases []benchCase
	for _, store := range stores {
		for _, batch := range []int{1, 4, 16, 64, 256} {
			cases = append(cases, benchCase{store, batch})
		}
	}
	for _, tc := range cases {
		store, batch := tc.store, tc.batch
		b.Run(fmt.Sprintf("store=%v/batch=%d", store, batch), func(b *testing.B) {
			b.ReportAllocs()
			ap := NewApplierStore(nil, store)
			defer ap.Close()
			repo := newRepo()
			next := 0
			applied, objects := 0, 0
			for b.Loop() {
				if next+batch > len(ds) {
					b.StopTimer()
					repo, next = newRepo(), 0
					b.StartTimer()
				}
				for i, err := range ap.ApplyBatch(b.Context(), repo, ds[next:next+batch]) {
					if err != nil {
						b.Fatalf("delta %d: %v", next+i, err)
					}
				}
				for _, d := range ds[next : next+batch] {
					objects += len(d.Objects)
				}
				next += batch
				applied += batch
			}
			b.ReportMetric(float64(applied)/b.Elapsed().Seconds(), "updates/s")
			b.ReportMetric(float64(objects)/float64(b.N), "objects/op")
		})
	}
}

// benchIndexPack adds the store=indexpack cases to BenchmarkApply: the
// former pack path through `git index-pack`, kept to compare against.
const benchIndexPack = true

// BenchmarkWriteObjects measures writing n new objects durably, loose or
// as one pack, without Apply's checks: where the two cost the same is
// packThreshold.
func BenchmarkWriteObjects(b *testing.B) {
	e := gittest.Env(b)
	objs := noteDbBatch(b, gittest.NoteDbShape{Changes: 200, Events: 12, Seed: 43})
	for _, n := range []int{1, 2, 4, 8, 16, 32, 64} {
		for _, store := range []Store{StoreLoose, StorePack} {
			write := writeLoose
			if store == StorePack {
				write = writePack
			}
			b.Run(fmt.Sprintf("objects=%d/store=%v", n, store), func(b *testing.B) {
				b.ReportAllocs()
				objDir := filepath.Join(newBare(b, e), "objects")
				next := 0
				for b.Loop() {
					if next+n > len(objs) {
						b.StopTimer()
						objDir, next = filepath.Join(newBare(b, e), "objects"), 0
						b.StartTimer()
					}
					if err := write(objDir, objs[next:next+n]); err != nil {
						b.Fatal(err)
					}
					next += n
				}
			})
		}
	}
}

// BenchmarkPackOf measures building a pack of a NoteDb batch in memory
// (compression and checksums, no I/O).
func BenchmarkPackOf(b *testing.B) {
	objs := noteDbBatch(b, gittest.NoteDbShape{Changes: 40, Events: 12, Seed: 43})[:460]
	var raw int64
	for _, o := range objs {
		raw += int64(len(o.Data))
	}
	b.SetBytes(raw)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := packOf(objs); err != nil {
			b.Fatal(err)
		}
	}
}
