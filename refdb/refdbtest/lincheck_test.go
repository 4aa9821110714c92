package refdbtest

import (
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/refdb/none"
)

// TestCheckerCatchesViolations makes sure the model is not vacuous: the
// "none" backend, which accepts every CAS, produces histories porcupine
// rejects.
func TestCheckerCatchesViolations(t *testing.T) {
	s := none.New(nil)
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var mu sync.Mutex
	var history []porcupine.Operation
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ops := linClient(s, "p", c, LinOptions{OpsPerClient: 50, OpTimeout: time.Second}, now)
			mu.Lock()
			history = append(history, ops...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res, _ := checkHistory(history)
	require.Equal(t, porcupine.Illegal, res)
}

func TestModelAcceptsSequentialHistory(t *testing.T) {
	ops := linClient(none.New(nil), "p", 0, LinOptions{OpsPerClient: 200, OpTimeout: time.Second}, func() int64 { return time.Now().UnixNano() })
	res, path := checkHistory(ops)
	require.Equal(t, porcupine.Ok, res, path)
}
