package campaign

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParsePorcelain reads the output of git 2.39's push --porcelain.
func TestParsePorcelain(t *testing.T) {
	out := "To http://127.0.0.1:1/campaign/core.git\n" +
		"*\t389cb332b260654bf1610837115d2a1d99d69907:refs/heads/b3\t[new branch]\n" +
		" \te379eff4313710cd917f6443ca639bc6b490f2b6:refs/heads/main\t389cb33..e379eff\n" +
		"+\tc0668feedec5bd2a0a53757a6282127dd5255077:refs/heads/x\t389cb33...c0668fe (forced update)\n" +
		"-\t:refs/heads/gone\t[deleted]\n" +
		"!\tc0668feedec5bd2a0a53757a6282127dd5255077:refs/heads/b1\t[remote rejected] (sitesync: rejected: refs/heads/b1 was updated at site a; fetch and retry)\n" +
		"=\te379eff4313710cd917f6443ca639bc6b490f2b6:refs/heads/b2\t[up to date]\n" +
		"Done\n"
	got := parsePorcelain(out)
	tests := []struct {
		to, from, old string
		ok            bool
	}{
		{"refs/heads/b3", "389cb332b260654bf1610837115d2a1d99d69907", ZeroSHA, true},
		{"refs/heads/main", "e379eff4313710cd917f6443ca639bc6b490f2b6", "389cb33", true},
		{"refs/heads/x", "c0668feedec5bd2a0a53757a6282127dd5255077", "389cb33", true},
		{"refs/heads/gone", "", "", true},
		{"refs/heads/b1", "c0668feedec5bd2a0a53757a6282127dd5255077", "", false},
		{"refs/heads/b2", "e379eff4313710cd917f6443ca639bc6b490f2b6", "", false},
	}
	require.Len(t, got, len(tests))
	for i, tt := range tests {
		require.Equal(t, tt.to, got[i].To)
		require.Equal(t, tt.from, got[i].From, tt.to)
		require.Equal(t, tt.old, got[i].Old(), tt.to)
		require.Equal(t, tt.ok, got[i].OK(), tt.to)
	}
	require.Empty(t, parsePorcelain("fatal: the remote end hung up unexpectedly\n"))
}
