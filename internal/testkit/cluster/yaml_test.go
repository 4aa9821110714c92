package cluster

import (
	"bytes"
	"testing"
	"time"

	"github.com/spf13/viper"
	"github.com/stretchr/testify/require"
)

// TestMarshalYAML checks that what the launcher writes reads back, through
// the same YAML reader serve uses, as the tree it was given.
func TestMarshalYAML(t *testing.T) {
	tree := map[string]any{
		"site": map[string]any{"name": "a", "repos": "/tmp/x y/repos", "state": `q"uote\`},
		"mesh": map[string]any{
			"peers": []any{
				map[string]any{"name": "b", "addr": "127.0.0.1:1", "url": "http://127.0.0.1:2"},
				map[string]any{"name": "c", "addr": "127.0.0.1:3", "url": "http://127.0.0.1:4"},
			},
		},
		"refdb":       map[string]any{"endpoints": []string{"127.0.0.1:2379"}, "ignore": []any{}},
		"replication": map[string]any{"mode": "sync", "acks": 3, "timeout": 1500 * time.Millisecond, "x": nil, "on": true, "f": 0.5},
		"shard":       map[string]any{},
	}
	out, err := marshalYAML(tree)
	require.NoError(t, err)
	v := viper.New()
	v.SetConfigType("yaml")
	require.NoError(t, v.ReadConfig(bytes.NewReader(out)), "%s", out)
	require.Equal(t, "a", v.GetString("site.name"))
	require.Equal(t, "/tmp/x y/repos", v.GetString("site.repos"))
	require.Equal(t, `q"uote\`, v.GetString("site.state"))
	require.Equal(t, []string{"127.0.0.1:2379"}, v.GetStringSlice("refdb.endpoints"))
	require.Equal(t, 3, v.GetInt("replication.acks"))
	require.Equal(t, 1500*time.Millisecond, v.GetDuration("replication.timeout"))
	require.True(t, v.GetBool("replication.on"))
	require.InDelta(t, 0.5, v.GetFloat64("replication.f"), 0)
	peers, ok := v.Get("mesh.peers").([]any)
	require.True(t, ok, "%s", out)
	require.Len(t, peers, 2)
	require.Equal(t, "c", peers[1].(map[string]any)["name"])
	require.Equal(t, "http://127.0.0.1:4", peers[1].(map[string]any)["url"])
	// sections in the documented order
	require.Less(t, bytes.Index(out, []byte("site:")), bytes.Index(out, []byte("mesh:")))
	require.Less(t, bytes.Index(out, []byte("mesh:")), bytes.Index(out, []byte("replication:")))

	_, err = marshalYAML(map[string]any{"bad": make(chan int)})
	require.Error(t, err)
}
