package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeFile writes config.yaml in dir the safe way (temporary file, then
// rename into place) and returns its path.
func writeFile(tb testing.TB, dir, content string) string {
	tb.Helper()
	path := filepath.Join(dir, "config.yaml")
	tmp, err := os.CreateTemp(dir, ".config-*.tmp")
	require.NoError(tb, err)
	_, err = tmp.WriteString(content)
	require.NoError(tb, err)
	require.NoError(tb, tmp.Close())
	require.NoError(tb, os.Rename(tmp.Name(), path))
	return path
}
