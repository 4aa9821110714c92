package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/bench/report"
)

// TestBenchQuick runs `sitesync bench push|pack|notedb --quick` as a user
// would, with one sitesync mode next to the baselines over short links, and
// checks the report each writes and prints. (bench/sitesync's TestQuick runs
// every mode.)
func TestBenchQuick(t *testing.T) {
	bin := build(t)
	for _, w := range []string{"push", "pack", "notedb"} {
		t.Run(w, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "report")
			cmd := exec.Command(bin, "bench", w, "--quick", "--delay", "5ms", "--modes", "quorum",
				"--pushes", "3", "--updates", "5", "--out", out, "--log-level", "warn")
			cmd.Dir = t.TempDir()
			got, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", got)
			require.Contains(t, string(got), "| "+w+" | sitesync/quorum | ack |")
			require.Contains(t, string(got), "| "+w+" | git-push | visible_all |")
			f, err := os.Open(filepath.Join(out, report.JSONFile))
			require.NoError(t, err)
			defer f.Close()
			rep, err := report.ReadJSON(f)
			require.NoError(t, err)
			require.NoError(t, rep.Check())
			require.FileExists(t, filepath.Join(out, w+"-cdf.png"))
		})
	}
	out, err := exec.Command(bin, "bench", "push", "--modes", "eventual").CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 2, exit.ExitCode())
	require.Contains(t, string(out), `"eventual" is not one of async, quorum, sync`)
}
