// Package frontdoor is the HTTP face of a site: the git smart-HTTP protocol
// for stock git clients (clone, fetch and push of /{project}.git, protocol v0
// and v2, gzip request bodies), the JSON API under /api/v1, and the health
// endpoints. A request for a project this site does not hold (Config.Route)
// gets 307 to a site that holds it, before anything touches the disk.
//
// Packs stream straight between the client and the git process in both
// directions; the daemon's memory does not grow with the size of a pack.
// Project names are checked by internal/git before anything touches the disk,
// and a refused request creates nothing. Every request is logged once, with
// project, service, bytes in and out, duration and status.
//
// A Server is safe for concurrent use; its handlers return only after the git
// processes they started have exited.
package frontdoor
