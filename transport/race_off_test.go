//go:build !race

package transport

const (
	raceEnabled = false
	bulkSize    = 1 << 30
)
