package kind

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/transport"
)

// Every kind in use has a name, no two share a number or a name, and no
// kind in use reuses a retired number.
func TestRegistry(t *testing.T) {
	seen := map[transport.Kind]bool{}
	byName := map[string]bool{}
	for _, k := range All() {
		require.False(t, seen[k], "kind %d listed twice", k)
		require.False(t, retired[k], "kind %d is retired", k)
		seen[k] = true
		n := Name(k)
		require.NotContains(t, n, "kind-", "kind %d has no name", k)
		require.False(t, byName[n], "name %q used twice", n)
		byName[n] = true
	}
	require.Len(t, names, len(All()), "every named kind is listed by All")
	require.Equal(t, "retired-8", Name(8))
	require.Equal(t, "kind-99", Name(99))
}
