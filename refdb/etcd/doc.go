// Package etcd is the refdb backend on an etcd v3 cluster (a real distributed
// CAS store for small deployments and multi-process tests).
//
// A CAS reads the batch's keys (one linearizable Txn of Gets), decides with
// refdb.Decide, then commits one Txn whose If holds a compare per key — the
// key's ModRevision is still the one read (0: still absent) — and whose Then
// puts the new records. If any key moved, the Else branch returns the keys'
// current records in the same round trip; they are reported in the
// *refdb.ConflictError, or, if the values still match (a same-value rewrite),
// the Txn is retried against them.
//
// The Store remembers the last record and ModRevision it read or wrote of
// each key (seen.go). When every key of a batch is remembered and the batch
// holds against them, the read is skipped: the guarded commit goes at once,
// one round trip instead of two — the common case of a site moving refs it
// moved last. A stale entry fails the guard and costs the retry above; a
// conflict against remembered values is never reported without reading etcd.
//
// Limits: one etcd Txn may hold at most the server's --max-txn-ops operations
// (default 128), so a batch has at most Options.MaxTxnOps refs; larger batches
// fail with refdb.ErrInvalid before anything is sent. Keys follow
// refdb/internal/keys. Safe for concurrent use.
package etcd
