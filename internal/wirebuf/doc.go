// Package wirebuf reads sitesync's binary wire formats (the NoteDb delta
// frames of notedbfast, the delta envelopes of the coordinator): a Reader
// consumes a byte slice field by field, and its first error sticks, so a
// decoder reads every field and checks Err once. It never reads past the
// slice and never panics on short or hostile input.
//
// Concurrency: a Reader is used by one goroutine.
package wirebuf
