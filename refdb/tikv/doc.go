// Package tikv is the production refdb backend: each CAS is one optimistic
// TiKV transaction (client-go txnkv) that reads the batch's keys at its start
// timestamp, compares them with the expected values, writes the new records
// and commits. Percolator's write-conflict check at prewrite makes the commit
// fail if any of those keys was committed by another transaction after our
// snapshot, so a successful commit means every compared value was still
// current at commit time: the batch is atomic and linearizable.
//
// A write conflict is not reported as is: the transaction is retried from a
// fresh snapshot, which either succeeds or sees the values that really moved
// and returns a *refdb.ConflictError naming them.
//
// Keys follow refdb/internal/keys: one contiguous range per project, so List
// and RemoveProject are range scans, and no two projects' ranges overlap.
//
// Production stores come from Open (PD endpoints); tests and the embedded
// backend pass an in-process client-go mock store to New. Safe for concurrent
// use.
package tikv
