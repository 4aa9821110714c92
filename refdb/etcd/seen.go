package etcd

import (
	"sync"

	"github.com/sitesync/sitesync/refdb"
)

// seenMax bounds the cache: about 100 bytes an entry.
const seenMax = 1 << 16

// seen remembers, per key, the last record this Store read or wrote and its
// etcd mod revision. A CAS whose refs are all in it skips the read and sends
// the guarded commit at once: one round trip instead of two, for the common
// case of a site moving refs it wrote or read last. The guard (each key's
// mod revision) is what makes the CAS correct, never the cache: a stale
// entry only costs the retry that a concurrent writer costs anyway, and a
// conflict found against cached values is checked against etcd before it is
// reported. Safe for concurrent use.
type seen struct {
	mu sync.Mutex
	m  map[string]seenEntry
}

type seenEntry struct {
	rec refdb.Record
	rev int64
}

// lookup returns the cached records and revisions of every key, or ok=false
// if one is missing.
func (c *seen) lookup(keys []string) (recs []refdb.Record, revs []int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	recs = make([]refdb.Record, len(keys))
	revs = make([]int64, len(keys))
	for i, k := range keys {
		e, hit := c.m[k]
		if !hit {
			return nil, nil, false
		}
		recs[i], revs[i] = e.rec, e.rev
	}
	return recs, revs, true
}

// store remembers what was read or written at these revisions; an entry
// never goes back to an older revision.
func (c *seen) store(keys []string, recs []refdb.Record, revs []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]seenEntry)
	}
	for i, k := range keys {
		if old, hit := c.m[k]; hit && old.rev > revs[i] {
			continue
		}
		if len(c.m) >= seenMax {
			for victim := range c.m { // an arbitrary entry
				delete(c.m, victim)
				break
			}
		}
		c.m[k] = seenEntry{rec: recs[i], rev: revs[i]}
	}
}

// forget drops everything (a project was removed).
func (c *seen) forget() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
