// Package refdb is the global ref database: the single authority for the
// current value of every guarded ref of every project (DESIGN.md §3, §4).
//
// The replication coordinator commits a write by one call to [Store.CAS] with
// every ref the write moves; that commit is the decision every site resolves
// against (the linearization point of a push). A batch is all or nothing: if
// any ref does not hold the value the caller expected, no ref of the batch
// changes and the caller gets a [*ConflictError] naming, for each mismatching
// ref, the value, version and writing site found in the store.
//
// Invariants every backend keeps (checked by package refdbtest):
//   - a ref moves only from the value the caller read (compare-and-set);
//   - a batch is applied whole or not at all;
//   - a ref's Version only grows, also across delete and re-create (a deleted
//     ref keeps a tombstone record with Value == refmove.ZeroID);
//   - CAS and Get are linearizable;
//   - projects never share keys: "a", "a/b" and "ab" are disjoint ranges.
//
// Backends live in subpackages: tikv (production, TiKV transactions), etcd,
// embedded (an in-process TiKV store for demo and tests) and none (no checks
// at all, single site only). Package refdb/backend opens one from a [Config].
//
// Every Store is safe for concurrent use. Methods take ctx first and return
// once ctx is done at the latest; they never keep ctx.
package refdb
