package tikv_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tikv/client-go/v2/testutils"
	tikvclient "github.com/tikv/client-go/v2/tikv"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/internal/keys"
	"github.com/sitesync/sitesync/refdb/refdbtest"
	"github.com/sitesync/sitesync/refdb/tikv"
)

// TestBatchAcrossRegions: a project's refs split over two regions (the common
// case for a large project in a real cluster). A batch spanning both cannot
// use 1PC and commits with 2PC across regions; it must stay all or nothing.
func TestBatchAcrossRegions(t *testing.T) {
	const prefix, project = "/mr", "p"
	layout := keys.Layout{Prefix: prefix}
	client, cluster, pdClient, err := testutils.NewMockTiKV("", nil)
	require.NoError(t, err)
	testutils.BootstrapWithMultiRegions(cluster, layout.Ref(project, "refs/heads/m"))
	kv, err := tikvclient.NewTestTiKVStore(client, pdClient, nil, nil, 0)
	require.NoError(t, err)
	s := tikv.New(kv, tikv.Options{Prefix: prefix})
	defer s.Close()
	ctx := context.Background()
	a, z := "refs/heads/a", "refs/heads/z"
	Z := refmove.ZeroID

	_, err = s.CAS(ctx, project, refdbtest.Batch(refdb.Update{Ref: a, Old: Z, New: refdbtest.SHA(0)}, refdb.Update{Ref: z, Old: Z, New: refdbtest.SHA(0)}))
	require.NoError(t, err)
	_, err = s.CAS(ctx, project, refdbtest.Batch(refdb.Update{Ref: a, Old: refdbtest.SHA(0), New: refdbtest.SHA(5)}, refdb.Update{Ref: z, Old: refdbtest.SHA(9), New: refdbtest.SHA(5)}))
	require.ErrorIs(t, err, refdb.ErrConflict)

	// 4 goroutines move both refs together by read-modify-CAS. No local
	// latches: lost races happen in the store, leaving prewrite locks that
	// readers wait out (client-go's txnLock backoff starts at 100ms), which
	// is what makes this test slow-ish under -race.
	var successes atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < 8; {
				recs, err := s.Get(ctx, project, a, z)
				if !assert.NoError(t, err) {
					return
				}
				if !assert.Equal(t, recs[0].Value, recs[1].Value, "a batch was applied in part") {
					return
				}
				next := refdbtest.SHA(refdbtest.Counter(recs[0].Value) + 1)
				_, err = s.CAS(ctx, project, refdbtest.Batch(
					refdb.Update{Ref: a, Old: recs[0].Value, New: next},
					refdb.Update{Ref: z, Old: recs[1].Value, New: next}))
				switch {
				case err == nil:
					successes.Add(1)
					done++
				case errors.Is(err, refdb.ErrConflict):
				default:
					assert.NoError(t, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	list, err := s.List(ctx, project)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, []string{a, z}, []string{list[0].Ref, list[1].Ref})
	for _, r := range list {
		assert.Equal(t, uint64(successes.Load()), refdbtest.Counter(r.Value), r.Ref)
		assert.Equal(t, uint64(successes.Load()+1), r.Version, r.Ref)
	}
	require.NoError(t, s.RemoveProject(ctx, project))
	list, err = s.List(ctx, project)
	require.NoError(t, err)
	assert.Empty(t, list)
}
