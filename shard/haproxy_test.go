package shard

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMapKeys(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		keys    []string
		exact   bool
	}{
		{"literal project", "tango/secret", []string{"/tango/secret.git/", "/tango/secret/info/refs", "/tango/secret/git-upload-pack",
			"/tango/secret/git-receive-pack", "/api/v1/projects/tango%2Fsecret", "/api/v1/projects/tango%2fsecret"}, true},
		{"everything below", "tango/**", []string{"/tango/", "/api/v1/projects/tango%2F", "/api/v1/projects/tango%2f"}, true},
		{"one segment below is wider", "tango/*", []string{"/tango/", "/api/v1/projects/tango%2F", "/api/v1/projects/tango%2f"}, false},
		{"mid-segment wildcard", "eu/core-*", []string{"/eu/core-", "/api/v1/projects/eu%2Fcore-", "/api/v1/projects/eu%2fcore-"}, false},
		{"top-level prefix", "big*", []string{"/big", "/api/v1/projects/big"}, false},
		{"escaped segment", "my team/**", []string{"/my%20team/", "/api/v1/projects/my%20team%2F", "/api/v1/projects/my%20team%2f"}, true},
		{"leading wildcard", "*/core", nil, false},
		{"everything", "**", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, exact := mapKeys(tt.pattern)
			assert.Equal(t, tt.keys, keys)
			assert.Equal(t, tt.exact, exact)
		})
	}
}

func TestHAProxy(t *testing.T) {
	m, err := NewMap([]string{"a", "b", "c"}, []Rule{
		{Match: "tango/secret", Sites: []string{"c"}},
		{Match: "tango/*", Sites: []string{"b"}},
		{Match: "tango/x", Sites: []string{"a"}},
		{Match: "eu/*/main", Sites: []string{"c", "b"}},
		{Match: "*/core", Sites: []string{"a"}},
		{Match: "tango/core/**", Sites: []string{"a"}},
		{Match: "eu/core/**", Sites: []string{"a"}},
	})
	require.NoError(t, err)
	opt := HAProxyOptions{
		URLs:    map[string]string{"a": "http://10.0.0.1:8080", "b": "https://git-b.example.com", "c": "http://[::1]"},
		MapPath: "/etc/haproxy/sitesync.map", Bind: "*:80", Source: "site.yaml",
	}
	out, err := HAProxy(m, opt)
	require.NoError(t, err)

	var lines []string
	for _, l := range strings.Split(out.Map, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	assert.Equal(t, []string{
		"/tango/secret.git/ site_c",
		"/tango/secret/info/refs site_c",
		"/tango/secret/git-upload-pack site_c",
		"/tango/secret/git-receive-pack site_c",
		"/api/v1/projects/tango%2Fsecret site_c",
		"/api/v1/projects/tango%2fsecret site_c",
		"/tango/ site_b",
		"/api/v1/projects/tango%2F site_b",
		"/api/v1/projects/tango%2f site_b",
		"/eu/ sites_c.b",
		"/api/v1/projects/eu%2F sites_c.b",
		"/api/v1/projects/eu%2f sites_c.b",
		"/tango/core/ site_a",
		"/api/v1/projects/tango%2Fcore%2F site_a",
		"/api/v1/projects/tango%2fcore%2f site_a",
		"/eu/core/ site_a",
		"/api/v1/projects/eu%2Fcore%2F site_a",
		"/api/v1/projects/eu%2fcore%2f site_a",
	}, lines)
	notes := strings.Join(out.Notes, "\n")
	assert.NotContains(t, notes, `shard.projects[1] "tango/*" → b: prefix`,
		"every project below /tango/ that tango/* does not place is global or has a longer key of its own")
	assert.Contains(t, notes, `shard.projects[3] "eu/*/main" → c, b: prefix "/eu/" is wider than the pattern and also matches projects that shard.projects[4] places elsewhere (e.g. "eu/core")`)
	assert.Contains(t, notes, `shard.projects[2] "tango/x" → a never applies`)
	assert.Contains(t, notes, `shard.projects[4] "*/core" → a starts with a wildcard`)
	assert.Contains(t, notes, `shard.projects[6] "eu/core/**" → a: prefix "/eu/core/" lies under "/eu/" of shard.projects[3]`,
		"a later rule's longer prefix beats an earlier rule in HAProxy")
	assert.NotContains(t, notes, `shard.projects[5]`, "tango/* and tango/core/** never match one project: HAProxy's longest prefix is right")
	assert.Contains(t, out.Map, "# NOTE: shard.projects[4]")

	for _, want := range []string{
		"use_backend %[path,map_beg(/etc/haproxy/sitesync.map,sitesync_global)]",
		"bind *:80",
		"backend sitesync_global\n",
		"    server a 10.0.0.1:8080 check\n    server b git-b.example.com:443 ssl verify required ca-file @system-ca check\n    server c [::1]:80 check\n",
		"backend site_c\n",
		"backend site_b\n",
		"backend sites_c.b\n",
	} {
		assert.Contains(t, out.Config, want)
	}

	opt.URLs["b"] = "http://b.example.com/git"
	_, err = HAProxy(m, opt)
	assert.ErrorContains(t, err, `site "b": http.url "http://b.example.com/git" has a path`)
}
