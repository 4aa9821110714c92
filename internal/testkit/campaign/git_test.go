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

// TestOutcome: what a client was told, from git's porcelain line and from
// the write API's status and body.
func TestOutcome(t *testing.T) {
	line := func(flag byte, summary string) pushedRef {
		return pushedRef{Flag: flag, To: "refs/heads/x", Summary: summary}
	}
	pushes := []struct {
		name string
		ref  pushedRef
		want Outcome
	}{
		{"fast-forward", line(' ', "389cb33..e379eff"), Acked},
		{"forced", line('+', "389cb33...c0668fe (forced update)"), Acked},
		{"created", line('*', "[new branch]"), Acked},
		{"deleted", line('-', "[deleted]"), Acked},
		{"up to date", line('=', "[up to date]"), Unknown},
		{"conflict", line('!', "[remote rejected] (sitesync: rejected: refs/heads/b1 was updated at site a; fetch and retry)"), Refused},
		{"no quorum", line('!', "[remote rejected] (sitesync: rejected: quorum not reached: 1 of 2 required sites answered within 3s)"), Refused},
		{"client's own non-fast-forward", line('!', "[rejected] (non-fast-forward)"), Refused},
		{"refdb unavailable", line('!', "[remote rejected] (sitesync: rejected: refdb unavailable: cas in \"p\": commit: context deadline exceeded)"), Unknown},
		{"not confirmed", line('!', "[remote rejected] (sitesync: not confirmed, it may still take effect (fetch to see): refdb unavailable: cas in \"p\": commit: context deadline exceeded)"), Unknown},
		{"remote failure", line('!', "[remote failure] (remote failed to report status)"), Unknown},
	}
	for _, tt := range pushes {
		require.Equal(t, tt.want, tt.ref.Outcome(), tt.name)
	}
	api := []struct {
		code int
		body string
		want Outcome
	}{
		{200, `{"txn":"a-1"}`, Acked},
		{409, `{"error":"conflict"}`, Refused},
		{503, `{"error":"quorum not reached: 1 of 2 required sites answered within 3s"}`, Refused},
		{503, `{"error":"refdb unavailable: context deadline exceeded"}`, Unknown},
		{500, `{"error":"boom"}`, Unknown},
	}
	for _, tt := range api {
		require.Equal(t, tt.want, apiOutcome(tt.code, []byte(tt.body)), "%d %s", tt.code, tt.body)
	}
}
