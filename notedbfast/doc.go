// Package notedbfast is the NoteDb fast path (DESIGN.md §5): small writes
// whose refs are all Gerrit NoteDb refs travel to peer sites as one compact
// delta instead of a pack.
//
// At the origin, a Classifier decides the path of a write: every ref must
// match the NoteDb patterns (notedb.refs) and the objects reachable from the
// new values and not from the old ones must total at most notedb.max_bytes;
// it returns those objects, read through one long-lived cat-file process,
// in dependency order. An ObjectCache in front of that process answers the
// reads of objects an earlier update wrote (the commit and tree the next
// update of a change moves from) without a round trip. A Codec encodes one or more writes (Delta) as one
// versioned frame: raw objects and ref updates, zstd-compressed with a
// dictionary trained on generated NoteDb text (internal/gendict, embedded).
// Object ids are not sent: the decoder hashes the contents. A small batch
// may go as a based frame (EncodeBased): compressed against objects the
// peer already holds — each update's old commit, its notes tree and the
// notes it replaces (Bases) — which the peer reads from its own repository
// to decode (DecodeBased); a peer lacking them gets a plain frame.
// A Batcher coalesces concurrent writes (group commit) into one flush while
// an earlier one is in flight, each write keeping its own result; a flush
// may release its slot early (after its decision) so the next batch starts.
//
// At a peer, Decode reads a frame under Limits (hostile input: bounded
// memory, a clear error, never a panic), and an Applier checks every
// object's hash and form and that everything it refers to is present, then
// writes the objects durably: loose objects for a small batch, one pack and
// its index for a larger one, both written from Go without a git process
// (the objects were checked already). A delta whose parents are
// missing gets a *MissingError naming them; the sender answers with Chain
// (objects back to a commit the peer has, bounded) or falls back to a pack.
//
// Invariants: an object is written only after its hash and every object it
// refers to were checked, so the peer's object store stays connected; a
// refused delta writes nothing; refs are not moved here — the caller moves
// them, in refdb version order, only after Apply succeeded (objects before
// refs).
//
// Concurrency: Codec, Classifier, Applier, Batcher and ObjectCache are safe for
// concurrent use. Encode, Decode, Verify and Links are pure.
package notedbfast
