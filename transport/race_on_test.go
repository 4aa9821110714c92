//go:build race

package transport

// Under the race detector QUIC runs ~10× slower on 2 cores, so the bulk
// stream of TestThreeSiteMesh shrinks from 1 GiB to 64 MiB.
const (
	raceEnabled = true
	bulkSize    = 64 << 20
)
