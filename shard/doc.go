// Package shard decides where a project lives and where a request for it must
// go. It is pure: no goroutines, no I/O, no clock.
//
// A Map is built from the sites (in configuration order: this site first,
// then its peers) and the shard.projects rules. The first rule whose glob
// (internal/glob) matches a project places it on that rule's sites; a project
// no rule matches is global and lives on every site. Route turns a placement
// into a decision for one site's front door: serve locally, or redirect to the
// nearest placement site by measured RTT (unknown RTTs sort last, ties keep
// the order of the rule's sites list). HAProxy renders the same rules as an
// HAProxy map so a load balancer can route without the redirect.
//
// Invariants: a project is held by at least one site; Placement and Holds
// agree; Route never sends a request to a site that does not hold the project
// and never redirects when this site holds it.
//
// A Map is immutable after NewMap and safe for concurrent use.
package shard
