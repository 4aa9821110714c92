// Package kind is the registry of the message kinds sites exchange over the
// mesh (transport.Kind): one place that says what each number means, who
// sends it and who handles it, so that a new kind cannot reuse a number and
// tools (logs, metrics, a protocol fuzzer, another handler) can name them
// without importing the coordinator. Kinds are part of the mesh protocol:
// a number, once used, keeps its meaning; a retired number is listed as
// retired and never reused. Constants only; safe for concurrent use.
package kind

import (
	"fmt"

	"github.com/sitesync/sitesync/transport"
)

// The kinds of the replication protocol. Requests are answered (a vote, "ok"
// or an error); streams carry raw bytes after a header.
const (
	// Pack (stream): a pack into a transaction's quarantine at a peer
	// (packsync: the tee of a push, a shipment, a fetch's answer).
	Pack transport.Kind = 1
	// Prepare (request): hold a write's objects, journal it, vote.
	Prepare transport.Kind = 2
	// Commit (request): a write is decided; the peer looks the versions up
	// in the refdb and applies what the refdb holds.
	Commit transport.Kind = 3
	// Abort (request): a write failed; drop what it left.
	Abort transport.Kind = 4
	// Fetch (request): send me a pack of these objects (answered by a Pack
	// stream).
	Fetch transport.Kind = 5
	// Create (request): create a project's repository.
	Create transport.Kind = 6
	// Projects (request): which projects do you hold that I should hold.
	Projects transport.Kind = 7
	// 8 and 9 are retired: the NoteDb fast path's requests with a JSON
	// envelope and a version 1 frame. A peer that still speaks only those
	// answers "no handler" to 10 and 11, and the origin falls back.

	// PrepareDelta (request): a NoteDb batch's objects as a delta frame:
	// apply them, journal the batch, vote per write.
	PrepareDelta transport.Kind = 10
	// CommitDelta (request): a NoteDb batch is decided (or released).
	CommitDelta transport.Kind = 11
	// Import (request): a repository of the sender is being imported
	// (`sitesync import`): say what copy of it you hold, compare a range
	// of its refs with yours, or copy it now that the refdb holds it.
	Import transport.Kind = 12
	// Delete (request): a project was deleted (its HEAD record is a
	// tombstone in the refdb); remove its repository.
	Delete transport.Kind = 13
)

// retired kinds are never reused.
var retired = map[transport.Kind]bool{8: true, 9: true}

var names = map[transport.Kind]string{
	Pack: "pack", Prepare: "prepare", Commit: "commit", Abort: "abort", Fetch: "fetch",
	Create: "create", Projects: "projects", PrepareDelta: "prepare-delta", CommitDelta: "commit-delta",
	Import: "import", Delete: "delete",
}

// All lists the kinds in use, in number order.
func All() []transport.Kind {
	return []transport.Kind{Pack, Prepare, Commit, Abort, Fetch, Create, Projects, PrepareDelta, CommitDelta, Import, Delete}
}

// Name is k's name for logs and metrics ("kind-N" for a number not in use).
func Name(k transport.Kind) string {
	if n, ok := names[k]; ok {
		return n
	}
	if retired[k] {
		return fmt.Sprintf("retired-%d", k)
	}
	return fmt.Sprintf("kind-%d", k)
}
