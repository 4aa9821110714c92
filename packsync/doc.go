// Package packsync ships packfiles between sites: the bytes a client pushes
// are teed to the peer sites as they arrive, and each peer indexes them into
// a quarantine beside its repository, where they stay invisible until the
// write that brought them is decided.
//
// A Quarantine is one transaction's incoming objects at one site. Its
// lifecycle is Create → IndexPack (any number of packs) → Missing (the vote:
// are the new ref values complete here?) → Sync → Migrate on commit, or Drop
// on abort. Migrate moves packs into the repository's object store index
// file last, so git never sees a pack without its index; a crash at any
// point leaves either a quarantine to resolve from the journal or objects
// that are complete in the store.
//
// Completeness is checked with `index-pack --strict`, which refuses a pack
// that links to an object neither in the pack nor in the repository, and by
// looking up each new ref value: the cost is bounded by the pack, never by
// the size of the repository (no rev-list --not --all).
//
// DropStaleGit removes what git's own receive-pack leaves when it is killed
// mid-push (tmp_objdir-incoming-*), once nothing in it has changed for a
// while; catch-up calls it for every project.
//
// A Quarantine is not safe for concurrent use: one transaction owns it.
package packsync
