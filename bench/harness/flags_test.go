package harness

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(t *testing.T, o Options)
	}{
		{name: "defaults", check: func(t *testing.T, o Options) {
			require.Equal(t, []string{"a", "b", "c"}, o.Topology.Sites)
			require.Equal(t, 50*time.Millisecond, o.Topology.Profile.Delay)
			require.EqualValues(t, 1e9/8, o.Topology.Profile.Bandwidth)
			require.Contains(t, o.Out, ResultsDir)
		}},
		{name: "quick writes nowhere by default", args: []string{"-quick"}, check: func(t *testing.T, o Options) {
			require.True(t, o.Quick)
			require.Empty(t, o.Out)
		}},
		{name: "profile and sizes", args: []string{"-sites", "5", "-delay", "80ms", "-bw", "100Mbit", "-size", "64MiB", "-updates", "-1"}, check: func(t *testing.T, o Options) {
			require.Equal(t, []string{"a", "b", "c", "d", "e"}, o.Topology.Sites)
			require.Equal(t, 80*time.Millisecond, o.Topology.Profile.Delay)
			require.EqualValues(t, 100e6/8, o.Topology.Profile.Bandwidth)
			require.EqualValues(t, 64<<20, o.PackSize)
			require.Equal(t, -1, o.NoteDbUpdates)
		}},
		{name: "one site", args: []string{"-sites", "1"}, wantErr: true},
		{name: "bad size", args: []string{"-size", "lots"}, wantErr: true},
		{name: "bad bandwidth", args: []string{"-bw", "fast"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("bench", flag.ContinueOnError)
			f := RegisterFlags(fs)
			require.NoError(t, fs.Parse(tt.args))
			o, err := f.Options(NoteDb)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, []string{NoteDb}, o.Workloads)
			tt.check(t, o)
		})
	}
}
