package coord

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sitesync/sitesync/internal/git"

	"github.com/sitesync/sitesync/internal/journal"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
)

// The rules of a write's life that decide what a site does, apart from the
// I/O that carries it out: pure functions of what the refdb, the journals
// and the repository say, with the time passed in. Each is table-tested in
// rules_test.go; the shell (origin.go, peer.go, apply.go, catchup.go) reads
// the inputs, calls the rule and performs what it returns.

// validateWrite refuses a write that some site could not apply, before any
// site hears of it (invariant 9): names git would refuse or that are not
// refs (HEAD and anything outside refs/: sitesync moves refs, and HEAD is
// a symbolic ref no site may point at an object through the refs API), a
// ref twice, a patch-set ref rewritten, and, given the types of the new
// objects (types[i] for ups[i], "" when not known yet), a branch that
// would point at something other than a commit, or an object that is not
// there.
func validateWrite(ups []Update, types []string) error {
	if len(ups) == 0 {
		return fmt.Errorf("%w: no ref updates", ErrInvalid)
	}
	for _, u := range ups {
		if !strings.HasPrefix(u.Ref, "refs/") {
			return fmt.Errorf("%w: %q is not a ref under refs/ (sitesync moves refs only; HEAD follows the branch it names)", ErrInvalid, u.Ref)
		}
	}
	if err := checkUpdates(ups); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	for i, u := range ups {
		if patchSet.MatchString(u.Ref) && u.Old != refmove.ZeroID {
			return fmt.Errorf("%w: %s is a patch-set ref and cannot be changed once created", ErrInvalid, u.Ref)
		}
		if u.New == refmove.ZeroID || i >= len(types) || types[i] == "" {
			continue
		}
		switch t := types[i]; {
		case t == missingType:
			return fmt.Errorf("%w: object %s for %s is not in this site's repository", ErrInvalid, u.New, u.Ref)
		case strings.HasPrefix(u.Ref, "refs/heads/") && t != "commit":
			return fmt.Errorf("%w: %s is a branch and can only point at a commit; %s is a %s", ErrInvalid, u.Ref, u.New, t)
		}
	}
	return nil
}

// notReserved refuses a client's write of sitesync's own refs
// (git.ReservedRefs: the HEAD record), which only sitesync writes.
func notReserved(ups []Update) error {
	for _, u := range ups {
		if strings.HasPrefix(u.Ref, git.ReservedRefs) {
			return fmt.Errorf("%w: %s is sitesync's own (set HEAD with PUT /api/v1/projects/{name}/head)", ErrInvalid, u.Ref)
		}
	}
	return nil
}

// patchSet matches Gerrit's patch-set refs, which are create-only.
var patchSet = regexp.MustCompile(`^refs/changes/[0-9]{2}/[0-9]+/[0-9]+$`)

// missingType is the type validateWrite is given for an object that is not in
// the repository.
const missingType = "missing"

// resolution is what a peer does with a prepared write.
type resolution int

const (
	// resolveWait: the refdb has not decided the write yet and its deadline
	// has not passed.
	resolveWait resolution = iota
	// resolveCommit: keep the write's objects and move its refs to what the
	// refdb holds.
	resolveCommit
	// resolveAbort: drop the write's objects; the refdb's values reach the
	// site by catch-up.
	resolveAbort
)

func (r resolution) String() string {
	return [...]string{"wait", "commit", "abort"}[r]
}

// resolveRule is the rule of invariant 5 for a prepared write e, given the
// refdb's records of its guarded refs (any order): commit when the refdb
// names the write at any of its refs (a non-atomic push is decided in
// several batches, and some of its refs may be refused: what the refdb
// holds is applied either way), or has moved every guarded ref past the value the write
// found (a later version: the write was decided and then superseded, or
// lost to another — either way the site must now hold the refdb's values,
// and the write's objects may be what they build on); abort once the
// deadline passed with a ref still at the value the write found (the
// write was never decided); wait otherwise. A write with no guarded ref
// has nothing for the refdb to name: it commits.
func resolveRule(e journal.Entry, recs []refdb.Record, guarded func(string) bool, now time.Time) resolution {
	byRef := make(map[string]refdb.Record, len(recs))
	for _, r := range recs {
		byRef[r.Ref] = r
	}
	decided, named := true, false
	for _, u := range e.Updates {
		if !guarded(u.Ref) {
			continue
		}
		r := byRef[u.Ref]
		if r.Txn == e.Txn {
			named = true
			continue
		}
		if r.Version == 0 {
			// Never written: no write of the ref was decided yet (the
			// origin may be adopting a ref the refdb has not seen).
			decided = false
			continue
		}
		value := r.Value
		if value == "" {
			value = refmove.ZeroID
		}
		old := u.Old
		if old == "" {
			old = refmove.ZeroID
		}
		if value == old {
			decided = false
		}
	}
	switch {
	case decided, named:
		return resolveCommit
	case now.After(e.Deadline):
		return resolveAbort
	}
	return resolveWait
}

// confirm keeps, of the versions a peer's message announces, what the refdb
// holds (invariant 9: a message is a hint to look, the refdb the proof). For
// each announced guarded ref it returns the refdb's own record when that is
// at the announced version or later (a later one is what the site must hold
// now), and reports in refused the announced versions the refdb does not
// hold (a lie, or a read of a refdb that lost a write). Refs the refdb does
// not guard are kept as announced: nobody decides them.
func confirm(announced []Version, recs []refdb.Record, guarded func(string) bool) (keep, refused []Version) {
	byRef := make(map[string]refdb.Record, len(recs))
	for _, r := range recs {
		byRef[r.Ref] = r
	}
	for _, v := range announced {
		if !guarded(v.Ref) {
			keep = append(keep, v)
			continue
		}
		r, ok := byRef[v.Ref]
		held := versionOf(r)
		switch {
		case !ok || held.Version < v.Version || held.Version == v.Version && held.Value != v.Value:
			refused = append(refused, v)
		default:
			keep = append(keep, held)
		}
	}
	return keep, refused
}

func versionOf(r refdb.Record) Version {
	v := r.Value
	if v == "" {
		v = refmove.ZeroID
	}
	return Version{Ref: r.Ref, Value: v, Version: r.Version, Site: r.Site}
}

// behindRefdb is catch-up's rule: the refdb's records whose value differs
// from the site's (local: the site's refs; a ref absent is at the zero id),
// in refdb version order, leaving out refs the refdb does not guard, HEAD,
// and refs a write of this site holds in flight (that write meets the
// refdb's verdict itself; the next pass catches up whatever it left). The
// values are compared, not the versions the site remembers: a site that
// holds a wrong value at a version it believes current is repaired.
func behindRefdb(recs []refdb.Record, local map[string]string, guarded, inflight func(string) bool) []Version {
	var behind []Version
	for _, r := range recs {
		if !guarded(r.Ref) || !strings.HasPrefix(r.Ref, "refs/") || inflight(r.Ref) {
			continue
		}
		cur, ok := local[r.Ref]
		if !ok {
			cur = refmove.ZeroID
		}
		if v := versionOf(r); cur != v.Value {
			behind = append(behind, v)
		}
	}
	sort.SliceStable(behind, func(i, j int) bool { return behind[i].Version < behind[j].Version })
	return behind
}

// forward keeps the versions that move a ref forward (or repeat the one
// held: the value may be what is wrong) given the highest version of each
// ref this site holds: invariant 3.
func forward(vs []Version, held func(ref string) uint64) []Version {
	var out []Version
	for _, v := range vs {
		if v.Version >= held(v.Ref) {
			out = append(out, v)
		}
	}
	return out
}

// backoff is how long to wait before the next try after n consecutive
// failures: first, doubling up to most.
func backoff(n int, first, most time.Duration) time.Duration {
	d := first
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}

// maxPrepareTimeout bounds the timeout a peer's PREPARE (and PREPARE-DELTA)
// may ask for: a write waits for its rule seconds, not hours, and a peer's
// number must not overflow a deadline (2^62 ms) or keep a prepared write
// for years. The messages' check refuses a timeout above it; the origin
// sends at most it (wireTimeout).
const maxPrepareTimeout = 10 * time.Minute

// wireTimeout is the timeout_ms an origin that waits d for its rule puts
// in a PREPARE: d in milliseconds, at least 1 and at most
// maxPrepareTimeout (a peer holds the write that long at most anyway).
func wireTimeout(d time.Duration) int64 {
	return min(max(d.Milliseconds(), 1), maxPrepareTimeout.Milliseconds())
}

// checkTimeout checks a PREPARE's timeout_ms: 1 to maxPrepareTimeout.
func checkTimeout(ms int64) error {
	if ms <= 0 || ms > maxPrepareTimeout.Milliseconds() {
		return fmt.Errorf("timeout of %d ms: want 1 to %d (%s)", ms, maxPrepareTimeout.Milliseconds(), maxPrepareTimeout)
	}
	return nil
}

// prepareTimeout is how long a peer waits for the origin of a PREPARE
// that asks for timeoutMS: that, bounded by maxPrepareTimeout (the
// message's check refuses more, this guards the conversion), plus grace.
func prepareTimeout(timeoutMS int64) time.Duration {
	d := maxPrepareTimeout
	if timeoutMS >= 0 && timeoutMS < maxPrepareTimeout.Milliseconds() {
		d = time.Duration(timeoutMS) * time.Millisecond
	}
	return d + prepareGrace
}

// prepareDeadline is when a peer aborts a write prepared at now whose origin
// waits timeoutMS for its rule, unless the refdb decided it by then.
func prepareDeadline(now time.Time, timeoutMS int64) time.Time {
	return now.Add(prepareTimeout(timeoutMS))
}

// decidedEntry is the outbound entry of a write decided at origin: the
// versions the refdb gave it, for the peers still to be told.
func decidedEntry(id, project, origin string, peers []string, vs []Version, now time.Time) journal.Entry {
	e := journal.Entry{Txn: id, Project: project, Origin: origin, Prepared: now, Peers: peers}
	for _, v := range vs {
		e.Updates = append(e.Updates, journal.Update{Ref: v.Ref, New: v.Value, Version: v.Version})
	}
	return e
}
