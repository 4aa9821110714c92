package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/testkit/etcdtest"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/refdbtest"
)

func TestLinearizable(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := fmt.Sprintf("/lin%d", prefixSeq.Add(1))
	refdbtest.CheckLinearizable(t, func(tb testing.TB) refdb.Store {
		s := newStoreWithPrefix(tb, srv, prefix)
		return s
	}, refdbtest.LinOptions{Seed: 2})
}

// callTimeout is each CAS's deadline in the fault test; callSlack is how late
// a call may return after it (scheduling on a loaded 2-core machine).
const (
	callTimeout = 1 * time.Second
	callSlack   = 500 * time.Millisecond
)

// faultClient moves its own three refs together, batch after batch.
type faultClient struct {
	refs      []string
	successes int
	unknown   int
	// candidates: values that may be final — the last success and every
	// failed (outcome unknown) value sent after it.
	candidates   map[string]bool
	late         []time.Duration // calls that returned past deadline + slack
	afterRestart atomic.Int64
}

// TestKillEtcdDuringCAS: SIGKILL the etcd server while 8 clients run
// 3-ref CAS batches. Every call must end by its deadline; after a restart on
// the same data dir every acknowledged batch is there, no batch is partial,
// and the clients carry on.
func TestKillEtcdDuringCAS(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := fmt.Sprintf("/fault%d", prefixSeq.Add(1))
	const project, nClients = "fault/project", 8
	var restarted atomic.Bool
	stop := make(chan struct{})
	clients := make([]*faultClient, nClients)
	var wg sync.WaitGroup
	for c := range clients {
		fc := &faultClient{candidates: map[string]bool{refmove.ZeroID: true}}
		for i := range 3 {
			fc.refs = append(fc.refs, fmt.Sprintf("refs/heads/c%d/r%d", c, i))
		}
		clients[c] = fc
		s := newStoreWithPrefix(t, srv, prefix)
		wg.Add(1)
		go func() {
			defer wg.Done()
			view, known := refmove.ZeroID, true
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				if !known { // the last outcome is unknown: read where we are
					recs, err := s.Get(ctx, project, fc.refs...)
					if err == nil {
						view, known = recs[0].Value, true
					}
				}
				next := refdbtest.SHA(uint64(c+1)<<32 | uint64(i+1))
				b := refdbtest.Batch()
				for _, r := range fc.refs {
					b.Updates = append(b.Updates, refdb.Update{Ref: r, Old: view, New: next})
				}
				start := time.Now()
				_, err := s.CAS(ctx, project, b)
				took := time.Since(start)
				cancel()
				if took > callTimeout+callSlack {
					fc.late = append(fc.late, took)
				}
				var ce *refdb.ConflictError
				switch {
				case err == nil:
					fc.successes++
					fc.candidates = map[string]bool{next: true}
					view = next
					if restarted.Load() {
						fc.afterRestart.Add(1)
					}
				case errors.As(err, &ce):
					known = false // an earlier unknown call did commit; re-read
				default:
					fc.unknown++
					fc.candidates[next] = true
					known = false
					time.Sleep(20 * time.Millisecond) // don't spin while etcd is down
				}
			}
		}()
	}

	waitSuccesses := func(min int, after bool) {
		require.Eventually(t, func() bool {
			for _, fc := range clients {
				if after && fc.afterRestart.Load() < int64(min) {
					return false
				}
			}
			return true
		}, 30*time.Second, 10*time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let the clients get going (not an assertion)
	srv.Kill()
	time.Sleep(1500 * time.Millisecond) // clients run against a dead server
	srv.Restart()
	restarted.Store(true)
	waitSuccesses(5, true)
	close(stop)
	wg.Wait()

	check := newStoreWithPrefix(t, srv, prefix)
	ctx := context.Background()
	var total, unknown int
	for c, fc := range clients {
		total += fc.successes
		unknown += fc.unknown
		assert.Empty(t, fc.late, "client %d: calls returned after deadline + slack", c)
		recs, err := check.Get(ctx, project, fc.refs...)
		require.NoError(t, err)
		for _, r := range recs[1:] {
			assert.Equal(t, recs[0].Value, r.Value, "client %d: partial batch", c)
			assert.Equal(t, recs[0].Txn, r.Txn, "client %d: partial batch", c)
			assert.Equal(t, recs[0].Version, r.Version, "client %d: partial batch", c)
		}
		assert.True(t, fc.candidates[recs[0].Value], "client %d: final value %s is neither the last acknowledged batch nor a later unknown one", c, recs[0].Value)
		assert.GreaterOrEqual(t, recs[0].Version, uint64(fc.successes), "client %d: an acknowledged batch is missing", c)
		assert.LessOrEqual(t, recs[0].Version, uint64(fc.successes+fc.unknown), "client %d: more commits than calls", c)
	}
	t.Logf("%d acknowledged batches, %d with unknown outcome (errors during the outage)", total, unknown)
	require.Positive(t, unknown, "the kill happened while clients were running")
}

// TestLinearizableAcrossKill: the linearizability check with the etcd server
// SIGKILLed and restarted in the middle of the history. Calls that failed
// during the outage may or may not have taken effect (porcupine considers
// both); everything else must stay linearizable across the restart.
func TestLinearizableAcrossKill(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := fmt.Sprintf("/linkill%d", prefixSeq.Add(1))
	refdbtest.CheckLinearizable(t, func(tb testing.TB) refdb.Store {
		return newStoreWithPrefix(tb, srv, prefix)
	}, refdbtest.LinOptions{Seed: 3, OpTimeout: callTimeout, During: func() {
		time.Sleep(300 * time.Millisecond)
		srv.Kill()
		time.Sleep(time.Second)
		assert.NoError(t, srv.TryRestart())
	}})
}
