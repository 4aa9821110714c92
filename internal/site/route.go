package site

import (
	"slices"
	"time"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/shard"
)

// Route is the front door's Config.Route: where a request for project goes
// when this site does not hold it (shard.Route). It reads the live
// configuration on every request, so a reloaded shard rule applies to the
// next request. rtt may be nil (no measurements: the rule's site order
// decides).
//
// serving, when not nil, says whether this site serves a project it holds:
// a site newly placed on a project catches up first, and until then its
// requests go to the nearest other placement site.
func Route(live *config.Live, rtt shard.RTT, serving func(project string) bool) func(project string) (base string, redirect bool) {
	return func(project string) (string, bool) {
		cfg := live.Current()
		m := cfg.ShardMap()
		site, redirect := shard.Route(m, cfg.Site.Name, project, rtt)
		if !redirect {
			if serving == nil || serving(project) {
				return "", false
			}
			others := slices.DeleteFunc(m.Placement(project), func(s string) bool { return s == cfg.Site.Name })
			if len(others) == 0 {
				return "", false
			}
			site = shard.Nearest(others, rtt)
		}
		url, _ := cfg.SiteURL(site)
		return url, true
	}
}

// rtt is the mesh's smoothed RTT to a connected peer.
func (s *Site) rtt(site string) (time.Duration, bool) {
	if s.mesh == nil {
		return 0, false
	}
	for _, p := range s.mesh.Peers() {
		if p.Name == site && p.Connected && p.RTT > 0 {
			return p.RTT, true
		}
	}
	return 0, false
}
