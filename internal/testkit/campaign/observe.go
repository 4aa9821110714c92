package campaign

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
)

// observeEvery is how often the observer reads every site: a ref that
// holds a value for less than this may go unseen; faster would take the
// machine's two cores from the sites under test.
const observeEvery = 200 * time.Millisecond

// observeTimeout bounds one read of a site's refs: git on a local
// repository answers in milliseconds; a stuck read must not stop the
// observer.
const observeTimeout = 10 * time.Second

// observer reads every site's refs from its repository on disk, over and
// over, and keeps each change as an Observation. It reads the disk, not
// the front door, so a paused or killed site is observed too: what its
// repository holds is what it serves when it runs again. A read goes
// through C git (for-each-ref, then cat-file for the objects), so it sees
// what a git client of the site would.
type observer struct {
	r *run

	mu      sync.Mutex
	last    map[[2]string]Observation // site, ref → the last change seen
	obs     []Observation
	readErr int // reads that failed (a repository git could not read)
}

func newObserver(r *run) *observer {
	return &observer{r: r, last: map[[2]string]Observation{}}
}

// run observes until ctx ends, then reads every site once more.
func (o *observer) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, s := range o.r.c.Sites() {
			o.observe(context.WithoutCancel(ctx), s)
		}
		select {
		case <-ctx.Done():
			for _, s := range o.r.c.Sites() {
				o.observe(context.WithoutCancel(ctx), s)
			}
			return
		case <-t.C:
		}
	}
}

// observe reads s's refs once and records what changed.
func (o *observer) observe(ctx context.Context, s *cluster.Site) {
	ctx, cancel := context.WithTimeout(ctx, observeTimeout)
	defer cancel()
	refs, err := o.r.git.refs(ctx, repoDir(s))
	at := time.Now()
	if err != nil {
		o.mu.Lock()
		o.readErr++
		o.mu.Unlock()
		return
	}
	ids := slices.Sorted(maps.Values(refs))
	missing, err := o.r.git.missing(ctx, repoDir(s), slices.Compact(ids))
	if err != nil {
		o.mu.Lock()
		o.readErr++
		o.mu.Unlock()
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ref := range slices.Sorted(maps.Keys(refs)) {
		o.note(Observation{Site: s.Name, Ref: ref, Value: refs[ref], At: at, Missing: missing[refs[ref]]})
	}
	for k, last := range o.last {
		if k[0] == s.Name && last.Value != ZeroSHA {
			if _, ok := refs[k[1]]; !ok {
				o.note(Observation{Site: s.Name, Ref: k[1], Value: ZeroSHA, At: at})
			}
		}
	}
}

// note keeps obs if it is a change: another value, or the same value's
// object gone missing. Caller holds mu.
func (o *observer) note(obs Observation) {
	k := [2]string{obs.Site, obs.Ref}
	last, ok := o.last[k]
	if !ok {
		last.Value = ZeroSHA
	}
	if last.Value == obs.Value && (last.Missing || !obs.Missing) {
		return
	}
	o.last[k] = obs
	o.obs = append(o.obs, obs)
}

// observations returns the changes seen so far, in the order seen.
func (o *observer) observations() []Observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.obs)
}
