package coord

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// parkAfter is how long a ref may keep failing to reach the refdb's value
// here before it is reported as parked (status, metrics, /readyz 503):
// long enough for a fetch from a peer that is restarting, short enough
// that an operator hears of a write that cannot be applied in minutes.
const parkAfter = 20 * time.Second

// Parked is a ref this site cannot move to the value the refdb holds: catch-
// up keeps retrying it (with backoff) and it is reported until it moves.
type Parked struct {
	Project string    `json:"project"`
	Ref     string    `json:"ref"`
	Value   string    `json:"value"`   // the refdb's value
	Version uint64    `json:"version"` // and its version
	Reason  string    `json:"reason"`  // the last failure
	Since   time.Time `json:"since"`   // the first failure
	Tries   int       `json:"tries"`
}

// parking remembers the refs that failed to apply. Safe for concurrent use.
type parking struct {
	mu   sync.Mutex
	refs map[string]map[string]*Parked // project → ref → what failed
}

// fail records that v could not be applied in project.
func (k *parking) fail(project string, v Version, err error, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.refs == nil {
		k.refs = make(map[string]map[string]*Parked)
	}
	m := k.refs[project]
	if m == nil {
		m = make(map[string]*Parked)
		k.refs[project] = m
	}
	p := m[v.Ref]
	if p == nil {
		p = &Parked{Project: project, Ref: v.Ref, Since: now}
		m[v.Ref] = p
	}
	p.Value, p.Version, p.Reason = v.Value, v.Version, err.Error()
	p.Tries++
}

// keep forgets every ref of project but those in failing: a catch-up pass
// of the project saw every other ref at the refdb's value.
func (k *parking) keep(project string, failing map[string]bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for ref := range k.refs[project] {
		if !failing[ref] {
			delete(k.refs[project], ref)
		}
	}
	if len(k.refs[project]) == 0 {
		delete(k.refs, project)
	}
}

// retain forgets every project for which keep says false.
func (k *parking) retain(keep func(project string) bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for project := range k.refs {
		if !keep(project) {
			delete(k.refs, project)
		}
	}
}

// clear forgets refs of project that moved to the refdb's value.
func (k *parking) clear(project string, vs []Version) {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := k.refs[project]
	if m == nil {
		return
	}
	for _, v := range vs {
		if p := m[v.Ref]; p != nil && v.Version >= p.Version {
			delete(m, v.Ref)
		}
	}
	if len(m) == 0 {
		delete(k.refs, project)
	}
}

// list returns the refs failing for at least parkAfter at now, by project
// and ref.
func (k *parking) list(now time.Time) []Parked {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []Parked
	for _, m := range k.refs {
		for _, p := range m {
			if now.Sub(p.Since) >= parkAfter {
				out = append(out, *p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Project != out[j].Project {
			return out[i].Project < out[j].Project
		}
		return out[i].Ref < out[j].Ref
	})
	return out
}

// Parked lists the refs this site has failed to move to the refdb's value
// for parkAfter or longer.
func (c *Coordinator) Parked() []Parked { return c.parked.list(time.Now()) }

// parkedError says what is parked, for /readyz.
func parkedError(ps []Parked) error {
	if len(ps) == 0 {
		return nil
	}
	p := ps[0]
	more := ""
	if len(ps) > 1 {
		more = fmt.Sprintf(" (and %d more)", len(ps)-1)
	}
	return fmt.Errorf("%d refs cannot be applied here: %s of %q at version %d since %s: %s%s",
		len(ps), p.Ref, p.Project, p.Version, p.Since.UTC().Format(time.RFC3339), p.Reason, more)
}
