package config

import (
	"slices"
	"time"

	"github.com/sitesync/sitesync/internal/glob"
	"github.com/sitesync/sitesync/shard"
)

// ReplicationRule is the ack rule that applies to one project.
type ReplicationRule struct {
	Mode Mode
	// Acks is how many placement sites, origin included, must hold a write
	// before it is acknowledged: 1 for async, the quorum for quorum (an unset
	// acks is min(DefaultAcks, placement)), every placement site for sync.
	Acks    int
	Timeout time.Duration
	// Override is the index in replication.projects of the rule that
	// applied, or -1 when none matched and the global rule applies.
	Override int
}

// Rule returns the replication rule for project: the first matching
// replication.projects entry over the global values, acks resolved against
// the project's placement. It panics on a Config that has not been validated.
func (c *Config) Rule(project string) ReplicationRule {
	comp := c.mustCompiled()
	r := ReplicationRule{
		Mode:     c.Replication.Mode,
		Timeout:  c.Replication.Timeout,
		Override: glob.FirstMatch(comp.repl, project),
	}
	acks := c.Replication.Acks
	if r.Override >= 0 {
		o := c.Replication.Projects[r.Override]
		if o.Mode != "" {
			r.Mode = o.Mode
		}
		if o.Acks != nil {
			acks = o.Acks
		}
		if o.Timeout != nil {
			r.Timeout = *o.Timeout
		}
	}
	n := len(comp.placement.Placement(project))
	switch {
	case r.Mode == ModeAsync:
		r.Acks = 1
	case r.Mode == ModeSync:
		r.Acks = n
	case acks != nil:
		r.Acks = *acks // Validate proved *acks <= n for every project
	default:
		r.Acks = min(DefaultAcks, n)
	}
	return r
}

// Placement returns the sites that hold project: the sites of the first
// matching shard.projects entry, or every site (Sites) when none matches.
// The slice is the caller's. It panics on a Config that has not been validated.
func (c *Config) Placement(project string) []string {
	return c.mustCompiled().placement.Placement(project)
}

// Holds reports whether site holds project.
func (c *Config) Holds(site, project string) bool {
	return c.mustCompiled().placement.Holds(site, project)
}

// ShardMap returns the placement of projects on sites (shard.projects over
// Sites). It panics on a Config that has not been validated.
func (c *Config) ShardMap() *shard.Map {
	return c.mustCompiled().placement
}

// Sites returns every site: this one (site.name) first, then the peers in
// file order. The slice is the caller's.
func (c *Config) Sites() []string {
	return slices.Clone(c.mustCompiled().sites)
}

// SiteURL returns the http.url of site: this site's own, or a peer's.
func (c *Config) SiteURL(site string) (string, bool) {
	if site == c.Site.Name {
		return c.HTTP.URL, true
	}
	if p, ok := c.Peer(site); ok {
		return p.URL, true
	}
	return "", false
}

// Peer returns the peer named name.
func (c *Config) Peer(name string) (Peer, bool) {
	for _, p := range c.Mesh.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return Peer{}, false
}

// Guarded reports whether ref is guarded by the refdb (not matched by
// refdb.ignore).
func (c *Config) Guarded(ref string) bool {
	return glob.FirstMatch(c.mustCompiled().ignore, ref) < 0
}

// NoteDBRef reports whether ref is in a NoteDb namespace (notedb.refs).
func (c *Config) NoteDBRef(ref string) bool {
	return glob.FirstMatch(c.mustCompiled().notedb, ref) >= 0
}

func (c *Config) mustCompiled() *compiled {
	if c.compiled == nil {
		panic("config: accessor called on a Config that was not validated")
	}
	return c.compiled
}
