// Package retry paces the backends' CAS retries after a lost race whose
// values still match (a same-value rewrite, a project removal): the batch is
// still applicable, so it is retried until it wins or ctx ends. Pure apart
// from the sleep; safe for concurrent use.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// MaxAttempts is a last resort against livelock when ctx has no deadline.
const MaxAttempts = 1000

// Base and Cap of the jittered exponential backoff: the first retries are
// immediate-ish (a lost race is usually won next time), later ones back off
// to at most 50ms so that many contenders spread out.
const (
	Base = 500 * time.Microsecond
	Cap  = 50 * time.Millisecond
)

// Wait sleeps before attempt (1-based: attempt 1 does not wait) and returns
// ctx's error if ctx ends first.
func Wait(ctx context.Context, attempt int) error {
	if attempt <= 1 {
		return ctx.Err()
	}
	d := Base << min(attempt-2, 10)
	if d > Cap {
		d = Cap
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
