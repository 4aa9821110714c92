// Package coord is the replication coordinator: one state machine per write
// transaction — prepare at the placement peers, collect votes under the
// project's ack rule, compare-and-swap every ref of the write in the refdb
// (the decision), commit locally, commit at the peers.
//
// The decision logic is pure and lives apart from the I/O: Tally counts
// votes against a rule and says whether the rule holds, can no longer hold,
// or is still open. It takes no clock and starts no goroutine.
package coord
