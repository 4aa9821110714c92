// Package refdbtest is the conformance suite every refdb backend runs:
//
//	func TestConformance(t *testing.T) { refdbtest.Run(t, newStore) }
//
// newStore may return a fresh store per call or views of one shared store:
// each subtest uses project names of its own. It also holds helpers shared by
// backend tests (SHA, Counter).
package refdbtest
