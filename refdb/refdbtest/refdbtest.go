package refdbtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
)

// Z is refmove.ZeroID, short for tables.
const Z = refmove.ZeroID

// SHA returns a valid object name derived from n (n's hex, zero-padded).
func SHA(n uint64) string { return fmt.Sprintf("%040x", n) }

// Counter parses a value written with SHA.
func Counter(sha string) uint64 {
	n, err := strconv.ParseUint(strings.TrimLeft(sha, "0"), 16, 64)
	if err != nil {
		return 0
	}
	return n
}

var seq atomic.Uint64

// Project returns a project name no other test of this process uses.
func Project(tb testing.TB) string {
	tb.Helper()
	return fmt.Sprintf("test-%d-%d/%s", time.Now().UnixNano(), seq.Add(1), strings.ReplaceAll(tb.Name(), "/", "."))
}

// Batch builds a batch for site "a" with a fresh transaction id.
func Batch(updates ...refdb.Update) refdb.Batch {
	return refdb.Batch{Txn: fmt.Sprintf("txn-%d", seq.Add(1)), Site: "a", Updates: updates}
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// Run runs the conformance suite against the stores newStore returns.
func Run(t *testing.T, newStore func(tb testing.TB) refdb.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s refdb.Store)
	}{
		{"single ref lifecycle", testSingle},
		{"multi ref batch", testMulti},
		{"create only", testCreateOnly},
		{"delete and recreate", testDelete},
		{"conflict changes nothing", testConflictAtomic},
		{"versions only grow", testVersions},
		{"concurrent read modify cas", testConcurrentCounter},
		{"concurrent same value rewrites", testConcurrentRewrite},
		{"names do not collide", testNames},
		{"list and remove project", testListRemove},
		{"invalid input", testInvalid},
		{"closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tt.fn(t, s)
		})
	}
}

func get1(t *testing.T, s refdb.Store, project, ref string) refdb.Record {
	t.Helper()
	recs, err := s.Get(ctxT(t), project, ref)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, ref, recs[0].Ref)
	return recs[0]
}

func testSingle(t *testing.T, s refdb.Store) {
	ctx, p, ref := ctxT(t), Project(t), "refs/heads/main"
	r := get1(t, s, p, ref)
	assert.Equal(t, refdb.Record{Ref: ref, Value: Z}, r, "a never written ref reads as zero, version 0")
	assert.False(t, r.Exists())

	before := time.Now().Add(-time.Minute)
	b := refdb.Batch{Txn: "txn-1", Site: "site-x", Updates: []refdb.Update{{Ref: ref, Old: Z, New: SHA(1)}}}
	recs, err := s.CAS(ctx, p, b)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, SHA(1), recs[0].Value)
	assert.Equal(t, uint64(1), recs[0].Version)
	assert.Equal(t, "site-x", recs[0].Site)
	assert.Equal(t, "txn-1", recs[0].Txn)
	assert.True(t, recs[0].Time.After(before), "record time set")

	r = get1(t, s, p, ref)
	assert.Equal(t, recs[0].Value, r.Value)
	assert.Equal(t, recs[0].Version, r.Version)
	assert.Equal(t, recs[0].Site, r.Site)
	assert.Equal(t, recs[0].Txn, r.Txn)
	assert.WithinDuration(t, recs[0].Time, r.Time, time.Microsecond)

	_, err = s.CAS(ctx, p, Batch(refdb.Update{Ref: ref, Old: SHA(1), New: SHA(2)}))
	require.NoError(t, err)
	_, err = s.CAS(ctx, p, Batch(refdb.Update{Ref: ref, Old: SHA(1), New: SHA(3)}))
	var ce *refdb.ConflictError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, refdb.ErrConflict)
	require.Len(t, ce.Refs, 1)
	assert.Equal(t, ref, ce.Refs[0].Ref)
	assert.Equal(t, SHA(1), ce.Refs[0].Want)
	assert.Equal(t, SHA(2), ce.Refs[0].Current.Value)
	assert.Equal(t, uint64(2), ce.Refs[0].Current.Version)
	assert.Equal(t, "a", ce.Refs[0].Current.Site)
	assert.Contains(t, err.Error(), ref)
	assert.Contains(t, err.Error(), `site "a"`)
	assert.Equal(t, SHA(2), get1(t, s, p, ref).Value)
}

func testMulti(t *testing.T, s refdb.Store) {
	ctx, p := ctxT(t), Project(t)
	var ups []refdb.Update
	var refs []string
	for i := range 10 {
		ref := fmt.Sprintf("refs/heads/b%02d", 9-i) // not sorted: order must be kept
		refs = append(refs, ref)
		ups = append(ups, refdb.Update{Ref: ref, Old: Z, New: SHA(uint64(i + 1))})
	}
	recs, err := s.CAS(ctx, p, Batch(ups...))
	require.NoError(t, err)
	require.Len(t, recs, 10)
	got, err := s.Get(ctx, p, refs...)
	require.NoError(t, err)
	for i := range ups {
		assert.Equal(t, refs[i], recs[i].Ref)
		assert.Equal(t, ups[i].New, recs[i].Value)
		assert.Equal(t, refs[i], got[i].Ref)
		assert.Equal(t, ups[i].New, got[i].Value)
		assert.Equal(t, recs[0].Txn, got[i].Txn, "one transaction id on every ref of the batch")
	}
	// Move all ten at once, plus a delete and a create in the same batch.
	for i := range ups {
		ups[i].Old, ups[i].New = ups[i].New, SHA(uint64(100+i))
	}
	ups[3].New = Z
	ups = append(ups, refdb.Update{Ref: "refs/heads/new", Old: Z, New: SHA(7)})
	_, err = s.CAS(ctx, p, Batch(ups...))
	require.NoError(t, err)
	got, err = s.Get(ctx, p, append(refs, "refs/heads/new")...)
	require.NoError(t, err)
	for i := range ups {
		assert.Equal(t, ups[i].New, got[i].Value, ups[i].Ref)
	}
}

func testCreateOnly(t *testing.T, s refdb.Store) {
	ctx, p, ref := ctxT(t), Project(t), "refs/changes/01/1/1"
	_, err := s.CAS(ctx, p, refdb.Batch{Txn: "t1", Site: "b", Updates: []refdb.Update{{Ref: ref, Old: Z, New: SHA(1)}}})
	require.NoError(t, err)
	_, err = s.CAS(ctx, p, Batch(refdb.Update{Ref: ref, Old: Z, New: SHA(2)}))
	var ce *refdb.ConflictError
	require.ErrorAs(t, err, &ce, "creating an existing ref is a conflict")
	require.Len(t, ce.Refs, 1)
	assert.Equal(t, Z, ce.Refs[0].Want)
	assert.Equal(t, SHA(1), ce.Refs[0].Current.Value)
	assert.Equal(t, "b", ce.Refs[0].Current.Site)
	assert.Equal(t, uint64(1), ce.Refs[0].Current.Version)
	assert.Equal(t, SHA(1), get1(t, s, p, ref).Value)

	// Updating a ref that does not exist is a conflict too.
	_, err = s.CAS(ctx, p, Batch(refdb.Update{Ref: "refs/heads/nope", Old: SHA(1), New: SHA(2)}))
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, Z, ce.Refs[0].Current.Value)
	assert.Equal(t, uint64(0), ce.Refs[0].Current.Version)
	assert.False(t, get1(t, s, p, "refs/heads/nope").Exists())
}

func testDelete(t *testing.T, s refdb.Store) {
	ctx, p, ref := ctxT(t), Project(t), "refs/heads/topic"
	_, err := s.CAS(ctx, p, Batch(refdb.Update{Ref: ref, Old: Z, New: SHA(1)}))
	require.NoError(t, err)
	recs, err := s.CAS(ctx, p, refdb.Batch{Txn: "del", Site: "c", Updates: []refdb.Update{{Ref: ref, Old: SHA(1), New: Z}}})
	require.NoError(t, err)
	assert.False(t, recs[0].Exists())
	r := get1(t, s, p, ref)
	assert.False(t, r.Exists())
	assert.Equal(t, Z, r.Value)
	assert.Equal(t, uint64(2), r.Version, "a deleted ref keeps its version")
	assert.Equal(t, "c", r.Site)
	assert.Equal(t, "del", r.Txn)

	list, err := s.List(ctx, p)
	require.NoError(t, err)
	require.Len(t, list, 1, "List reports the tombstone so catching-up sites delete the ref")
	assert.Equal(t, Z, list[0].Value)

	// Deleting again with the old value is a conflict.
	_, err = s.CAS(ctx, p, Batch(refdb.Update{Ref: ref, Old: SHA(1), New: Z}))
	require.ErrorIs(t, err, refdb.ErrConflict)
	// Re-create: must-not-exist holds for a deleted ref; the version goes on.
	recs, err = s.CAS(ctx, p, Batch(refdb.Update{Ref: ref, Old: Z, New: SHA(1)}))
	require.NoError(t, err)
	assert.Equal(t, uint64(3), recs[0].Version)
}

func testConflictAtomic(t *testing.T, s refdb.Store) {
	ctx, p := ctxT(t), Project(t)
	refs := []string{"refs/heads/a", "refs/heads/b", "refs/heads/c", "refs/meta/config"}
	var ups []refdb.Update
	for i, r := range refs {
		ups = append(ups, refdb.Update{Ref: r, Old: Z, New: SHA(uint64(i + 1))})
	}
	_, err := s.CAS(ctx, p, refdb.Batch{Txn: "seed", Site: "b", Updates: ups})
	require.NoError(t, err)
	before, err := s.Get(ctx, p, append(refs, "refs/heads/new")...)
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		bad  int // index of the update whose Old is wrong
	}{{"first", 0}, {"middle", 2}, {"last", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			var b []refdb.Update
			for i, r := range refs {
				old := SHA(uint64(i + 1))
				if i == tc.bad {
					old = SHA(999)
				}
				b = append(b, refdb.Update{Ref: r, Old: old, New: SHA(uint64(50 + i))})
			}
			b = append(b, refdb.Update{Ref: "refs/heads/new", Old: Z, New: SHA(77)})
			_, err := s.CAS(ctx, p, Batch(b...))
			var ce *refdb.ConflictError
			require.ErrorAs(t, err, &ce)
			require.Len(t, ce.Refs, 1, "only the mismatching ref is named")
			assert.Equal(t, refs[tc.bad], ce.Refs[0].Ref)
			assert.Equal(t, SHA(uint64(tc.bad+1)), ce.Refs[0].Current.Value)
			assert.Equal(t, uint64(1), ce.Refs[0].Current.Version)
			assert.Equal(t, "b", ce.Refs[0].Current.Site)
			assert.Equal(t, p, ce.Project)
			after, err := s.Get(ctx, p, append(refs, "refs/heads/new")...)
			require.NoError(t, err)
			assert.Equal(t, before, after, "a rejected batch changes no ref")
		})
	}
	// Several wrong: every mismatching ref is named.
	_, err = s.CAS(ctx, p, Batch(
		refdb.Update{Ref: refs[0], Old: Z, New: SHA(5)},
		refdb.Update{Ref: refs[1], Old: SHA(2), New: SHA(5)},
		refdb.Update{Ref: refs[2], Old: SHA(9), New: SHA(5)},
	))
	var ce *refdb.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Refs, 2)
	assert.Equal(t, refs[0], ce.Refs[0].Ref)
	assert.Equal(t, refs[2], ce.Refs[1].Ref)
	after, err := s.List(ctx, p)
	require.NoError(t, err)
	require.Len(t, after, 4)
	for _, r := range after {
		assert.Equal(t, uint64(1), r.Version, r.Ref)
	}
}

func testVersions(t *testing.T, s refdb.Store) {
	ctx, p, ref := ctxT(t), Project(t), "refs/heads/v"
	steps := []struct {
		name     string
		old, new string
	}{
		{"create", Z, SHA(1)},
		{"update", SHA(1), SHA(2)},
		{"same value", SHA(2), SHA(2)},
		{"delete", SHA(2), Z},
		{"recreate", Z, SHA(1)},
		{"delete again", SHA(1), Z},
		{"recreate again", Z, SHA(3)},
	}
	var last uint64
	for _, st := range steps {
		recs, err := s.CAS(ctx, p, Batch(refdb.Update{Ref: ref, Old: st.old, New: st.new}))
		require.NoError(t, err, st.name)
		assert.Greater(t, recs[0].Version, last, st.name)
		last = recs[0].Version
		assert.Equal(t, last, get1(t, s, p, ref).Version, st.name)
		// A failed CAS does not bump the version.
		_, err = s.CAS(ctx, p, Batch(refdb.Update{Ref: ref, Old: SHA(12345), New: SHA(6)}))
		require.ErrorIs(t, err, refdb.ErrConflict)
		assert.Equal(t, last, get1(t, s, p, ref).Version, st.name)
	}
}

// testConcurrentCounter: 16 goroutines increment one ref by read-modify-CAS;
// no increment may be lost.
func testConcurrentCounter(t *testing.T, s refdb.Store) {
	ctx, p, ref := ctxT(t), Project(t), "refs/sequences/changes"
	const workers, perWorker = 16, 15
	var successes, conflicts atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < perWorker; {
				recs, err := s.Get(ctx, p, ref)
				if err != nil {
					errs <- err
					return
				}
				cur := recs[0].Value
				_, err = s.CAS(ctx, p, refdb.Batch{Txn: fmt.Sprintf("w%d-%d", w, done), Site: "a",
					Updates: []refdb.Update{{Ref: ref, Old: cur, New: SHA(Counter(cur) + 1)}}})
				switch {
				case err == nil:
					successes.Add(1)
					done++
				case errors.Is(err, refdb.ErrConflict):
					conflicts.Add(1)
				default:
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	r := get1(t, s, p, ref)
	require.Equal(t, int64(workers*perWorker), successes.Load())
	assert.Equal(t, uint64(successes.Load()), Counter(r.Value), "final count = successful CAS calls")
	assert.Equal(t, uint64(successes.Load()), r.Version)
	t.Logf("%d successes, %d conflicts", successes.Load(), conflicts.Load())
}

func testNames(t *testing.T, s refdb.Store) {
	ctx, base := ctxT(t), Project(t)
	projects := []string{
		base + "/a", base + "/a/b", base + "/a/b/c", base + "/ab", base + "/a b", base + "/a-b",
		base + "/tango/core", base + "/tango%2Fcore", base + "/ünï/cødé", base + "/a.git",
	}
	refs := []string{
		"refs/heads/main",
		"refs/heads/feature/ünïcødé-ß",
		"refs/heads/a+b=c,d;e!f#g%h&'()$x",
		"refs/heads/a@b",
		"refs/heads/@",
		"refs/heads/-dash",
		"refs/tags/v1.0-rc.1",
		"refs/changes/01/1/meta",
		"refs/heads/x{y}z|w<v>u\"t`",
		"HEAD",
	}
	for i, p := range projects {
		var ups []refdb.Update
		for j, r := range refs {
			ups = append(ups, refdb.Update{Ref: r, Old: Z, New: SHA(uint64(1000*(i+1) + j))})
		}
		_, err := s.CAS(ctx, p, Batch(ups...))
		require.NoError(t, err, p)
	}
	for i, p := range projects {
		got, err := s.Get(ctx, p, refs...)
		require.NoError(t, err)
		for j, r := range got {
			assert.Equal(t, refs[j], r.Ref)
			assert.Equal(t, SHA(uint64(1000*(i+1)+j)), r.Value, "%s %s", p, refs[j])
			assert.Equal(t, uint64(1), r.Version)
		}
		list, err := s.List(ctx, p)
		require.NoError(t, err)
		require.Len(t, list, len(refs), "List of %q returns its own refs only", p)
		for _, r := range list {
			assert.Equal(t, uint64(1000*(i+1)), Counter(r.Value)/1000*1000, "%s %s", p, r.Ref)
		}
	}
	// The base itself (a prefix of all the others) is empty.
	list, err := s.List(ctx, base)
	require.NoError(t, err)
	assert.Empty(t, list)
	// Removing "a" leaves "a/b" and "ab" alone.
	require.NoError(t, s.RemoveProject(ctx, projects[0]))
	for _, p := range projects[1:] {
		list, err := s.List(ctx, p)
		require.NoError(t, err)
		assert.Len(t, list, len(refs), p)
	}
}

func testListRemove(t *testing.T, s refdb.Store) {
	ctx, p := ctxT(t), Project(t)
	// 1,100 refs in batches of 100 (etcd's default max-txn-ops is 128):
	// enough for List to page.
	const n = 1100
	var ups []refdb.Update
	for i := range n {
		ups = append(ups, refdb.Update{Ref: fmt.Sprintf("refs/changes/%02d/%d/1", i%100, i), Old: Z, New: SHA(uint64(i + 1))})
	}
	for i := 0; i < n; i += 100 {
		_, err := s.CAS(ctx, p, Batch(ups[i:i+100]...))
		require.NoError(t, err)
	}
	list, err := s.List(ctx, p)
	require.NoError(t, err)
	require.Len(t, list, n)
	for i := 1; i < len(list); i++ {
		assert.Less(t, list[i-1].Ref, list[i].Ref, "List is sorted by ref")
	}
	require.NoError(t, s.RemoveProject(ctx, p))
	list, err = s.List(ctx, p)
	require.NoError(t, err)
	assert.Empty(t, list)
	r := get1(t, s, p, ups[0].Ref)
	assert.Equal(t, refdb.Record{Ref: ups[0].Ref, Value: Z}, r)
	require.NoError(t, s.RemoveProject(ctx, p), "removing an empty project is fine")
}

func testInvalid(t *testing.T, s refdb.Store) {
	ctx, p := ctxT(t), Project(t)
	ok := refdb.Update{Ref: "refs/heads/ok", Old: Z, New: SHA(1)}
	for _, tc := range []struct {
		name    string
		project string
		batch   refdb.Batch
	}{
		{"empty project", "", Batch(ok)},
		{"nul in project", "a\x00b", Batch(ok)},
		{"empty batch", p, Batch()},
		{"no txn", p, refdb.Batch{Site: "a", Updates: []refdb.Update{ok}}},
		{"no site", p, refdb.Batch{Txn: "t", Updates: []refdb.Update{ok}}},
		{"short sha", p, Batch(refdb.Update{Ref: "refs/heads/x", Old: Z, New: "abc"})},
		{"upper-case sha", p, Batch(refdb.Update{Ref: "refs/heads/x", Old: Z, New: strings.ToUpper(SHA(0xabc))})},
		{"empty old", p, Batch(refdb.Update{Ref: "refs/heads/x", Old: "", New: SHA(1)})},
		{"not under refs/", p, Batch(refdb.Update{Ref: "heads/x", Old: Z, New: SHA(1)})},
		{"dot dot", p, Batch(refdb.Update{Ref: "refs/heads/a..b", Old: Z, New: SHA(1)})},
		{"space", p, Batch(refdb.Update{Ref: "refs/heads/a b", Old: Z, New: SHA(1)})},
		{"lock", p, Batch(refdb.Update{Ref: "refs/heads/a.lock", Old: Z, New: SHA(1)})},
		{"duplicate ref", p, Batch(ok, ok)},
		{"bad then good", p, Batch(ok, refdb.Update{Ref: "refs/heads/x", Old: Z, New: "zz"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CAS(ctx, tc.project, tc.batch)
			require.ErrorIs(t, err, refdb.ErrInvalid)
			assert.NotErrorIs(t, err, refdb.ErrConflict)
		})
	}
	_, err := s.Get(ctx, p, "refs/heads/bad:ref")
	require.ErrorIs(t, err, refdb.ErrInvalid)
	list, err := s.List(ctx, p)
	require.NoError(t, err)
	assert.Empty(t, list, "invalid batches wrote nothing")
}

func testClosed(t *testing.T, s refdb.Store) {
	ctx, p := ctxT(t), Project(t)
	_, err := s.CAS(ctx, p, Batch(refdb.Update{Ref: "refs/heads/x", Old: Z, New: SHA(1)}))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	_, err = s.Get(ctx, p, "refs/heads/x")
	require.ErrorIs(t, err, refdb.ErrClosed)
	_, err = s.CAS(ctx, p, Batch(refdb.Update{Ref: "refs/heads/x", Old: SHA(1), New: SHA(2)}))
	require.ErrorIs(t, err, refdb.ErrClosed)
	_, err = s.List(ctx, p)
	require.ErrorIs(t, err, refdb.ErrClosed)
}

// testConcurrentRewrite: CAS X→X is always applicable, so concurrent ones must
// all succeed (a backend that turns a lost optimistic race into a conflict
// without re-reading fails here), and each bumps the version once.
func testConcurrentRewrite(t *testing.T, s refdb.Store) {
	ctx, p, ref := ctxT(t), Project(t), "refs/meta/config"
	_, err := s.CAS(ctx, p, Batch(refdb.Update{Ref: ref, Old: Z, New: SHA(1)}))
	require.NoError(t, err)
	const workers, perWorker = 4, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				_, err := s.CAS(ctx, p, Batch(refdb.Update{Ref: ref, Old: SHA(1), New: SHA(1)}))
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, uint64(1+workers*perWorker), get1(t, s, p, ref).Version)
}
