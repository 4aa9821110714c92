package campaign

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
)

// crashEnv is the crash point a CrashAfterCommit fault arms.
const crashEnv = "SITESYNC_FAULT=after-refdb-commit"

// progress is the index of the operation the client is at, for the fault
// scheduler to wait on.
type progress struct {
	mu   sync.Mutex
	cond *sync.Cond
	op   int
	// faulted and active are the fault scheduler's: targets under a fault
	// now, and how many faults are active.
	faulted map[string]bool
	active  int
}

func (p *progress) init() {
	p.cond = sync.NewCond(&p.mu)
	p.faulted = map[string]bool{}
}

func (p *progress) set(op int) {
	p.mu.Lock()
	p.op = op
	p.mu.Unlock()
	p.cond.Broadcast()
}

// injectFaults starts each fault of the plan in order: when the client
// reaches its operation, its target is under no other fault and fewer than
// maxConcurrentFaults are active. It returns when every fault is healed.
// Faults are healed on time even if ctx ends; ctx only stops new ones.
func (r *run) injectFaults(ctx context.Context) {
	p := &r.prog
	// Taking the lock orders the wake-up after a waiter's check of ctx.
	stop := context.AfterFunc(ctx, func() { p.mu.Lock(); p.mu.Unlock(); p.cond.Broadcast() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, f := range r.plan.Faults {
		p.mu.Lock()
		for ctx.Err() == nil && (p.op < f.AtOp || p.faulted[f.target()] || p.active >= maxConcurrentFaults) {
			p.cond.Wait()
		}
		if ctx.Err() != nil {
			p.mu.Unlock()
			return
		}
		p.faulted[f.target()] = true
		p.active++
		p.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			hold(ctx, f.After)
			note := r.fault(ctx, i, f)
			p.mu.Lock()
			p.faulted[f.target()] = false
			p.active--
			p.mu.Unlock()
			p.cond.Broadcast()
			r.mu.Lock()
			r.faults = append(r.faults, fmt.Sprintf("%s: %s", f, note))
			r.mu.Unlock()
		}()
	}
}

// hold waits d, or less if ctx ends (the fault is then healed early).
func hold(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// fault injects f, holds it, heals it, and says what happened.
func (r *run) fault(ctx context.Context, i int, f Fault) string {
	r.logf("fault %d: %s begins (op %d)", i, f, f.AtOp)
	defer r.logf("fault %d: %s healed", i, f)
	var s *cluster.Site
	if f.Site != "" {
		s = r.c.Site(f.Site)
	}
	etcd := r.c.Etcd()
	switch f.Kind {
	case KillSite:
		_ = s.Kill()
		hold(ctx, f.For)
		return r.restart(s)
	case PauseSite:
		if err := s.Signal(syscall.SIGSTOP); err != nil {
			r.fail("fault %d: %v", i, err)
			return "not paused"
		}
		hold(ctx, f.For)
		if err := s.Signal(syscall.SIGCONT); err != nil {
			r.fail("fault %d: %v", i, err)
		}
		return "paused"
	case PartitionSite:
		r.c.Partition(f.Site, true)
		hold(ctx, f.For)
		r.c.Partition(f.Site, false)
		return "cut off"
	case KillEtcd:
		etcd.Kill()
		hold(ctx, f.For)
		if err := etcd.TryRestart(); err != nil {
			r.fail("fault %d: restart etcd: %v", i, err)
			return "etcd did not restart"
		}
		return "killed, restarted"
	case PauseEtcd:
		if err := etcd.Signal(syscall.SIGSTOP); err != nil {
			r.fail("fault %d: %v", i, err)
			return "not paused"
		}
		hold(ctx, f.For)
		if err := etcd.Signal(syscall.SIGCONT); err != nil {
			r.fail("fault %d: %v", i, err)
		}
		return "paused"
	case CrashAfterCommit:
		return r.crashAfterCommit(ctx, i, f, s)
	}
	r.fail("fault %d: unknown kind %v", i, f.Kind)
	return "unknown"
}

// restart starts a site again; a site that does not come back is stuck.
func (r *run) restart(s *cluster.Site) string {
	if err := s.Start(); err != nil {
		r.violate(Violation{Kind: Stuck, Site: s.Name, Detail: fmt.Sprintf("did not restart: %v", err)})
		return "did not restart"
	}
	return "restarted"
}

// crashAfterCommit restarts s with the crash point armed, pushes to it so
// that it dies right after its refdb commit, and restarts it without.
func (r *run) crashAfterCommit(ctx context.Context, i int, f Fault, s *cluster.Site) string {
	s.SetEnv(crashEnv)
	if err := s.Stop(); err != nil {
		r.logf("fault %d: stop %s: %v", i, s.Name, err)
	}
	if note := r.restart(s); note != "restarted" {
		s.SetEnv()
		return note
	}
	deadline := time.Now().Add(f.For)
	r.pushCommits(ctx, fmt.Sprintf("fault %d", i), s, f.Branch, 1, false)
	// The push returns when s dies (git sees the connection drop) or when
	// s refused it; the crash, if any, is then already done or under way.
	wctx, cancel := context.WithDeadline(context.Background(), deadline)
	_ = poll(wctx, func() bool { return !s.Running() })
	cancel()
	died := !s.Running()
	s.SetEnv()
	if !died {
		if err := s.Stop(); err != nil {
			r.logf("fault %d: stop %s: %v", i, s.Name, err)
		}
	}
	note := r.restart(s)
	if died {
		return "died at the crash point, " + note
	}
	return "no crash (the write was not decided), " + note
}
