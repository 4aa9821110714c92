// Package embedded is the refdb backend for `sitesync demo` and fast tests:
// the tikv backend's transaction code over client-go's in-process mock TiKV
// store (testutils.NewMockTiKV). Nothing is persisted and nothing leaves the
// process; it protects against split brain only between sites running in the
// same process.
//
// Stores opened with the same instance name share one in-process TiKV, so the
// sites of a demo cluster see one ref database; the instance is closed when
// its last Store is closed. The mock store keeps every version of every key,
// so memory grows with the number of writes: not for production. Safe for
// concurrent use.
package embedded
