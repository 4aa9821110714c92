package refdbtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
)

// Bench runs the refdb benchmarks against one store:
//
//	op=cas/refs=1           one single-ref CAS per iteration
//	op=cas/refs=10          one 10-ref batch per iteration
//	op=cas/refs=1/clients=100  100 goroutines doing single-ref CAS; reports cas/s
//
// Every CAS creates fresh refs (Old = zero): the in-process TiKV keeps every
// version of a key, so rewriting one key would measure a growing MVCC chain.
func Bench(b *testing.B, newStore func(tb testing.TB) refdb.Store) {
	s := newStore(b)
	b.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	project := Project(b)
	var n atomic.Uint64
	batch := func(refs int) refdb.Batch {
		id := n.Add(1)
		bt := Batch()
		for r := range refs {
			bt.Updates = append(bt.Updates, refdb.Update{Ref: fmt.Sprintf("refs/heads/b%d/%d", id, r), Old: refmove.ZeroID, New: SHA(id)})
		}
		return bt
	}
	for _, refs := range []int{1, 10} {
		b.Run(fmt.Sprintf("op=cas/refs=%d", refs), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.CAS(ctx, project, batch(refs)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("op=cas/refs=1/clients=100", func(b *testing.B) {
		const clients = 100
		b.ReportAllocs()
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		b.ResetTimer()
		start := time.Now()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(b.N) {
					if _, err := s.CAS(ctx, project, batch(1)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cas/s")
	})
}
