package notedbfast

import (
	"container/list"
	"context"
	"sync"

	"github.com/sitesync/sitesync/internal/git"
)

// ObjectCache is an ObjectReader that keeps the objects it last read from
// another, up to a number of bytes, least recently used out first. A
// NoteDb update reads the commit its ref moves from, and that commit's
// tree, which the update before it wrote and the classifier read a moment
// ago: the cache answers those without a cat-file round trip. Objects are
// named by their hash, so a cached one never goes stale; only reads by a
// full object id are kept (a missing object is never kept). The Data of
// the objects it returns is shared: callers must not change it. Safe for
// concurrent use.
type ObjectCache struct {
	r   ObjectReader
	max int

	mu   sync.Mutex
	size int
	lru  *list.List // of git.Object, most recent first
	byID map[string]*list.Element
}

// NewObjectCache returns a cache of up to maxBytes of object content read
// through r.
func NewObjectCache(r ObjectReader, maxBytes int) *ObjectCache {
	return &ObjectCache{r: r, max: maxBytes, lru: list.New(), byID: map[string]*list.Element{}}
}

// Reader is the reader the cache reads through.
func (c *ObjectCache) Reader() ObjectReader { return c.r }

// Object returns the object id, from the cache or read through.
func (c *ObjectCache) Object(ctx context.Context, id string) (git.Object, error) {
	c.mu.Lock()
	if e, ok := c.byID[id]; ok {
		c.lru.MoveToFront(e)
		o := e.Value.(git.Object)
		c.mu.Unlock()
		return o, nil
	}
	c.mu.Unlock()
	o, err := c.r.Object(ctx, id)
	if err != nil || !git.IsID(id) || o.ID != id || len(o.Data) > c.max {
		return o, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byID[id]; ok {
		return o, nil // read meanwhile by another caller
	}
	c.byID[id] = c.lru.PushFront(o)
	c.size += len(o.Data)
	for c.size > c.max {
		last := c.lru.Back()
		old := c.lru.Remove(last).(git.Object)
		delete(c.byID, old.ID)
		c.size -= len(old.Data)
	}
	return o, nil
}
