// Package journal keeps a site's prepared transactions durable: a peer
// votes yes on a write only after its entry is on disk, and after a crash
// every entry left is a prepared transaction to resolve from the refdb
// (commit if the refdb names it or a later version, abort after its
// deadline otherwise).
//
// Each entry is one JSON file, written to a temporary name, fsynced and
// renamed into place, so an entry is either whole or absent; Put also
// fsyncs the directory (the entry survives a power failure), PutVolatile
// does not (it may be lost, never torn). Get answers from a copy of each entry this process wrote (the
// directory belongs to one daemon, so the file holds the same) and reads
// the file only for entries an earlier process left. Safe for concurrent
// use by one process.
package journal
