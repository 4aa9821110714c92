package notedbfast

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// countingReader counts the reads that reach a real cat-file.
type countingReader struct {
	r     ObjectReader
	reads atomic.Int64
}

func (c *countingReader) Object(ctx context.Context, id string) (git.Object, error) {
	c.reads.Add(1)
	return c.r.Object(ctx, id)
}

func TestObjectCache(t *testing.T) {
	e := gittest.Env(t)
	origin, writes := gittest.GenerateNoteDb(t, e, gittest.NoteDbShape{Changes: 2, Events: 6, Seed: 7})
	cat := git.NewCatFile(origin)
	t.Cleanup(func() { cat.Close() })
	ctx := context.Background()
	var ids []string
	var total int
	seen := map[string]bool{}
	for _, w := range writes {
		for _, o := range toObjects(t, w) {
			if seen[o.ID] {
				continue
			}
			seen[o.ID] = true
			ids = append(ids, o.ID)
			total += len(o.Data)
		}
	}
	require.Greater(t, len(ids), 10)

	t.Run("second read is a hit, with the same bytes", func(t *testing.T) {
		cr := &countingReader{r: cat}
		c := NewObjectCache(cr, total)
		for _, id := range ids {
			want, err := cat.Object(ctx, id)
			require.NoError(t, err)
			for range 2 {
				got, err := c.Object(ctx, id)
				require.NoError(t, err)
				require.Equal(t, want, got)
			}
		}
		require.EqualValues(t, len(ids), cr.reads.Load(), "one read through per object")
	})
	t.Run("bounded by bytes, least recently used out first", func(t *testing.T) {
		first, err := cat.Object(ctx, ids[0])
		require.NoError(t, err)
		cr := &countingReader{r: cat}
		c := NewObjectCache(cr, len(first.Data)) // room for the first object only
		_, err = c.Object(ctx, ids[0])
		require.NoError(t, err)
		_, err = c.Object(ctx, ids[0])
		require.NoError(t, err)
		require.EqualValues(t, 1, cr.reads.Load())
		for _, id := range ids[1:] {
			_, err := c.Object(ctx, id)
			require.NoError(t, err)
		}
		_, err = c.Object(ctx, ids[0])
		require.NoError(t, err)
		require.EqualValues(t, len(ids)+1, cr.reads.Load(), "the first object was pushed out and read again")
		c.mu.Lock()
		defer c.mu.Unlock()
		require.LessOrEqual(t, c.size, len(first.Data))
		require.Equal(t, c.lru.Len(), len(c.byID))
	})
	t.Run("missing objects and revisions are not kept", func(t *testing.T) {
		cr := &countingReader{r: cat}
		c := NewObjectCache(cr, total)
		missing := "1234567890123456789012345678901234567890"
		for range 2 {
			_, err := c.Object(ctx, missing)
			require.ErrorIs(t, err, git.ErrObjectMissing)
		}
		head := writes[len(writes)-1].Updates[0].Ref
		for range 2 {
			_, err := c.Object(ctx, head)
			require.NoError(t, err)
		}
		require.EqualValues(t, 4, cr.reads.Load(), "every one read through")
	})
	t.Run("concurrent readers", func(t *testing.T) {
		c := NewObjectCache(cat, total/2)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range ids {
					id := ids[(i+g*7)%len(ids)]
					o, err := c.Object(ctx, id)
					if err != nil || o.ID != id {
						t.Errorf("%s: %v (got %s)", id, err, o.ID)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}
