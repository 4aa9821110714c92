package sitesync

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/bench/workload"
)

func TestAcks(t *testing.T) {
	tests := []struct {
		name  string
		sites int
		acks  int
		mode  string
		want  int
	}{
		{name: "async is the origin alone", sites: 3, mode: Async, want: 1},
		{name: "sync is every site", sites: 5, mode: Sync, want: 5},
		{name: "quorum defaults to a majority of 3", sites: 3, mode: Quorum, want: 2},
		{name: "quorum defaults to a majority of 4", sites: 4, mode: Quorum, want: 3},
		{name: "quorum takes W", sites: 5, acks: 4, mode: Quorum, want: 4},
		{name: "W is capped at the sites", sites: 3, acks: 9, mode: Quorum, want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sites := []string{"a", "b", "c", "d", "e"}[:tt.sites]
			cfg := Config{Topology: workload.Topology{Sites: sites}, Acks: tt.acks}
			require.Equal(t, tt.want, cfg.acks(tt.mode))
		})
	}
}
