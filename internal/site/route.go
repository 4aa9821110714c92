package site

import (
	"time"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/shard"
)

// Route is the front door's Config.Route: where a request for project goes
// when this site does not hold it (shard.Route). It reads the live
// configuration on every request, so a reloaded shard rule applies to the
// next request. rtt may be nil (no measurements: the rule's site order
// decides).
func Route(live *config.Live, rtt shard.RTT) func(project string) (base string, redirect bool) {
	return func(project string) (string, bool) {
		cfg := live.Current()
		site, redirect := shard.Route(cfg.ShardMap(), cfg.Site.Name, project, rtt)
		if !redirect {
			return "", false
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
