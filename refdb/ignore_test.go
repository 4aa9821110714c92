package refdb_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/refdb"
)

func TestIgnore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		patterns []string
		ref      string
		ignored  bool
	}{
		{"default automerge", refdb.DefaultIgnore, "refs/cache-automerge/12/1234567890abcdef", true},
		{"default branch", refdb.DefaultIgnore, "refs/heads/main", false},
		{"prefix only", refdb.DefaultIgnore, "refs/cache-automerge", false},
		{"star crosses slash", []string{"refs/users/*"}, "refs/users/01/1000001", true},
		{"question mark", []string{"refs/tags/v?"}, "refs/tags/v1", true},
		{"question mark one char", []string{"refs/tags/v?"}, "refs/tags/v10", false},
		{"dots are literal", []string{"refs/tags/v1.0"}, "refs/tags/v1x0", false},
		{"second pattern", []string{"refs/a/*", "refs/b/*"}, "refs/b/x", true},
		{"none", nil, "refs/cache-automerge/1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ig, err := refdb.NewIgnore(tc.patterns)
			require.NoError(t, err)
			assert.Equal(t, tc.ignored, ig.Match(tc.ref))
			assert.Equal(t, !tc.ignored, ig.Guarded(tc.ref))
		})
	}
	_, err := refdb.NewIgnore([]string{""})
	require.ErrorContains(t, err, "refdb.ignore[0]")
	assert.Equal(t, refdb.DefaultIgnore, refdb.Config{Backend: "none"}.Defaults().Ignore)
	assert.Empty(t, refdb.Config{Backend: "none", Ignore: []string{}}.Defaults().Ignore)
}
