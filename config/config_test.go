package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// site is the smallest valid file: one site, everything else defaulted.
const site = "site: {name: a, repos: /srv/git, state: /var/lib/sitesync}\n"

// peers makes it a three-site deployment.
const peers = `mesh:
  peers:
    - {name: b, addr: "10.0.0.2:7443", url: "http://b.example:8080"}
    - {name: c, addr: "10.0.0.3:7443", url: "http://c.example:8080"}
`

func parse(tb testing.TB, yaml string) (*Config, error) {
	tb.Helper()
	return Parse(strings.NewReader(yaml), "")
}

func mustParse(tb testing.TB, yaml string) *Config {
	tb.Helper()
	c, err := parse(tb, yaml)
	require.NoError(tb, err)
	return c
}

func TestLoadFull(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	require.NoError(t, err)
	dir, err := filepath.Abs("testdata")
	require.NoError(t, err)

	two, one := 2, 1
	sync30 := 30 * time.Second
	want := Config{
		Site: Site{Name: "a", Repos: "/srv/git", State: "/var/lib/sitesync"},
		HTTP: HTTP{Listen: "127.0.0.1:8080", URL: "http://git-a.example.com:8080"},
		Mesh: Mesh{
			Listen: "0.0.0.0:7443",
			CA:     filepath.Join(dir, "certs/ca.pem"),
			Cert:   filepath.Join(dir, "certs/a.pem"),
			Key:    filepath.Join(dir, "certs/a-key.pem"),
			Peers: []Peer{
				{Name: "b", Addr: "10.0.2.1:7443", URL: "http://git-b.example.com:8080"},
				{Name: "c", Addr: "10.0.3.1:7443", URL: "https://git-c.example.com"},
			},
			MaxFrame: 16 << 20, MaxPack: 8 << 30, StreamWindow: 32 << 20, ConnWindow: 64 << 20,
		},
		RefDB: RefDB{
			Backend:   BackendTiKV,
			Endpoints: []string{"10.0.1.10:2379", "10.0.2.10:2379", "10.0.3.10:2379"},
			Prefix:    "/sitesync",
			Ignore:    []string{"refs/cache-automerge/**"},
			MaxTxnOps: 128,
		},
		Replication: Replication{
			Mode: ModeQuorum, Acks: &two, Timeout: 10 * time.Second,
			Projects: []ReplicationOverride{
				{Match: "All-*", Mode: ModeSync, Timeout: &sync30},
				{Match: "tango/**", Acks: &one},
				{Match: "scratch/*", Mode: ModeAsync},
			},
		},
		Shard: Shard{Projects: []ShardRule{
			{Match: "tango/**", Sites: []string{"b"}},
			{Match: "plugins/*", Sites: []string{"a", "c"}},
		}},
		NoteDB:   NoteDB{Refs: DefaultNoteDBRefs, MaxBytes: 64 << 10},
		Projects: Projects{DefaultHead: "refs/heads/main"},
	}
	assert.Empty(t, Diff(&want, c), "keys that differ from the expected snapshot")
	assert.Equal(t, []string{"a", "b", "c"}, c.Sites())
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, site)
	want := Default()
	want.Site = Site{Name: "a", Repos: "/srv/git", State: "/var/lib/sitesync"}
	want.HTTP.URL = "http://127.0.0.1:8080"
	want.Mesh.Cert = "certs/a.pem"
	want.Mesh.Key = "certs/a-key.pem"
	assert.Empty(t, Diff(want, c))
	assert.Nil(t, c.Replication.Acks, "acks stays unset: it depends on the placement")
	assert.Equal(t, "16MiB", c.Mesh.MaxFrame.String())
	assert.Equal(t, "16GiB", c.Mesh.MaxPack.String())
	assert.Equal(t, "64KiB", c.NoteDB.MaxBytes.String())
	assert.Equal(t, []string{"a"}, c.Sites())

	// Some keys given, the rest of their section keeps its defaults.
	c = mustParse(t, site+"mesh: {max_frame: 1048576}\nreplication: {mode: sync}\n")
	assert.Equal(t, ByteSize(1<<20), c.Mesh.MaxFrame)
	assert.Equal(t, ByteSize(32<<20), c.Mesh.StreamWindow)
	assert.Equal(t, 10*time.Second, c.Replication.Timeout)
	assert.Equal(t, ModeSync, c.Replication.Mode)

	// A list in the file replaces the default list, it does not merge.
	c = mustParse(t, site+"notedb: {refs: [refs/x/*]}\nrefdb: {ignore: []}\n")
	assert.Equal(t, []string{"refs/x/*"}, c.NoteDB.Refs)
	assert.Empty(t, c.RefDB.Ignore)
	assert.True(t, c.Guarded("refs/cache-automerge/ab/cdef"))
}

// The default acks must be valid for any number of sites.
func TestDefaultAcksFitsSmallDeployments(t *testing.T) {
	one := mustParse(t, site)
	assert.Equal(t, ReplicationRule{Mode: ModeQuorum, Acks: 1, Timeout: DefaultTimeout, Override: -1}, one.Rule("p"))

	two := mustParse(t, site+`mesh: {peers: [{name: b, addr: "h:1", url: "http://b"}]}`+"\n")
	assert.Equal(t, 2, two.Rule("p").Acks)

	three := mustParse(t, site+peers+"shard: {projects: [{match: 'solo/*', sites: [c]}]}\n")
	assert.Equal(t, 2, three.Rule("p").Acks)
	assert.Equal(t, 1, three.Rule("solo/x").Acks, "capped at the placement")
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		key     string // exact key path
		problem string // part of the problem text
	}{
		{"missing site.name", "site: {repos: /r, state: /s}\n", "site.name", "required"},
		{"missing site.repos", "site: {name: a, state: /s}\n", "site.repos", "required"},
		{"missing site.state", "site: {name: a, repos: /r}\n", "site.state", "required"},
		{"empty file", "", "site.name", "required"},
		{"unsafe site name", "site: {name: ../a, repos: /r, state: /s}\n", "site.name", `bad site name "../a"`},
		{"bad mode", site + "replication: {mode: fast}\n", "replication.mode", `unknown mode "fast"`},
		{"bad override mode", site + "replication: {projects: [{match: a, mode: all}]}\n", "replication.projects[0].mode", `unknown mode "all"`},
		{"acks 0", site + "replication: {acks: 0}\n", "replication.acks", "must be at least 1"},
		{"acks exceeds all sites", site + peers + "replication: {acks: 4}\n", "replication.acks", `4 exceeds the 3 sites that hold project "x"`},
		{"acks exceeds a shard placement", site + peers + "replication: {acks: 2}\nshard: {projects: [{match: 'tango/*', sites: [b]}]}\n",
			"replication.acks", `2 exceeds the 1 site that holds project "tango/x" (placed by shard.projects[0])`},
		{"override acks exceeds", site + peers + "replication: {projects: [{match: 'big/**', acks: 5}]}\n",
			"replication.projects[0].acks", `5 exceeds the 3 sites that hold project "big/x"`},
		{"override acks exceeds overlapping shard", site + peers +
			"replication: {projects: [{match: '*/core', acks: 3}]}\nshard: {projects: [{match: 'tango/*', sites: [a, b]}]}\n",
			"replication.projects[0].acks", `3 exceeds the 2 sites that hold project "tango/core" (placed by shard.projects[0])`},
		{"acks not an integer", site + "replication: {acks: two}\n", "replication.acks", "want an integer, got string"},
		{"bad duration", site + "replication: {timeout: soon}\n", "replication.timeout", `bad duration "soon"`},
		{"duration without unit", site + "replication: {timeout: 10}\n", "replication.timeout", "needs a unit"},
		{"negative override timeout", site + "replication: {projects: [{match: a, timeout: -1s}]}\n", "replication.projects[0].timeout", "must be positive"},
		{"bad byte size", site + "mesh: {max_frame: 16XB}\n", "mesh.max_frame", `bad byte size "16XB"`},
		{"negative byte size", site + "mesh: {stream_window: -5}\n", "mesh.stream_window", "must be positive"},
		{"frame too large", site + "mesh: {max_frame: 2GiB}\n", "mesh.max_frame", "exceeds the limit of 1GiB"},
		{"zero pack limit", site + "mesh: {max_pack: 0}\n", "mesh.max_pack", "must be positive"},
		{"conn window below stream window", site + "mesh: {conn_window: 1MiB}\n", "mesh.conn_window", "smaller than mesh.stream_window"},
		{"duplicate peer", site + `mesh: {peers: [{name: b, addr: "h:1", url: "http://b"}, {name: b, addr: "h:2", url: "http://b2"}]}` + "\n",
			"mesh.peers[1].name", `duplicate "b"`},
		{"peer named as self", site + `mesh: {peers: [{name: a, addr: "h:1", url: "http://b"}]}` + "\n", "mesh.peers[0].name", `"a" is this site's own name`},
		{"peer without name", site + `mesh: {peers: [{addr: "h:1", url: "http://b"}]}` + "\n", "mesh.peers[0].name", "required"},
		{"peer addr without port", site + `mesh: {peers: [{name: b, addr: "h", url: "http://b"}]}` + "\n", "mesh.peers[0].addr", `bad address "h"`},
		{"duplicate peer addr", site + `mesh: {peers: [{name: b, addr: "h:1", url: "http://b"}, {name: c, addr: "h:1", url: "http://c"}]}` + "\n",
			"mesh.peers[1].addr", `duplicate "h:1"`},
		{"peer without url", site + `mesh: {peers: [{name: b, addr: "h:1"}]}` + "\n", "mesh.peers[0].url", "required"},
		{"peers not a list", site + "mesh: {peers: b}\n", "mesh.peers", "want a list, got string b"},
		{"bad glob", site + "replication: {projects: [{match: a, mode: sync}, {match: b, mode: sync}, {match: 'x/**y', mode: sync}]}\n",
			"replication.projects[2].match", `bad pattern "x/**y"`},
		{"missing match", site + "shard: {projects: [{sites: [a]}]}\n", "shard.projects[0].match", "required"},
		{"shard site unknown", site + peers + "shard: {projects: [{match: 'x/*', sites: [b, z]}]}\n", "shard.projects[0].sites", `unknown site "z"`},
		{"shard without sites", site + "shard: {projects: [{match: 'x/*'}]}\n", "shard.projects[0].sites", "at least one site"},
		{"shard duplicate site", site + "shard: {projects: [{match: 'x/*', sites: [a, a]}]}\n", "shard.projects[0].sites", `duplicate "a"`},
		{"unknown top-level key", site + "replicaton: {mode: sync}\n", "replicaton", `unknown key (did you mean "replication"?)`},
		{"unknown nested key", site + `mesh: {peers: [{name: b, adr: "h:1", url: "http://b"}]}` + "\n", "mesh.peers[0].adr", `unknown key (did you mean "addr"?)`},
		{"unknown key in rule", site + "replication: {projects: [{match: a, ack: 1}]}\n", "replication.projects[0].ack", "unknown key"},
		{"bad refdb backend", site + "refdb: {backend: mysql}\n", "refdb.backend", `unknown backend "mysql"`},
		{"no refdb with peers", site + peers + "refdb: {backend: none}\n", "refdb.backend", "cannot guard refs across sites"},
		{"etcd without endpoints", site + "refdb: {backend: etcd, endpoints: []}\n", "refdb.endpoints", `required for backend "etcd"`},
		{"bad endpoint", site + "refdb: {endpoints: ['127.0.0.1']}\n", "refdb.endpoints[0]", "bad address"},
		{"relative prefix", site + "refdb: {prefix: sitesync}\n", "refdb.prefix", "must start with '/'"},
		{"ignore not a ref", site + "refdb: {ignore: ['heads/*']}\n", "refdb.ignore[0]", `must start with "refs/"`},
		{"bad notedb glob", site + "notedb: {refs: ['refs/{a,b}']}\n", "notedb.refs[0]", "bad pattern"},
		{"notedb above frame", site + "notedb: {max_bytes: 32MiB}\n", "notedb.max_bytes", "exceeds mesh.max_frame (16MiB)"},
		{"bad listen address", site + "http: {listen: localhost}\n", "http.listen", `bad address "localhost"`},
		{"bad listen port", site + "mesh: {listen: ':99999'}\n", "mesh.listen", "bad port"},
		{"url needed for wildcard listen", site + "http: {listen: ':8080'}\n", "http.url", "required when http.listen"},
		{"bad url scheme", site + "http: {url: 'ftp://a'}\n", "http.url", "want http:// or https://"},
		{"empty ca", site + "mesh: {ca: ''}\n", "mesh.ca", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.yaml)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.key+": ", "the key path is named")
			var ce *Error
			require.True(t, errors.As(err, &ce), "%T", err)
			found := false
			for _, p := range ce.Problems {
				if p.Key == tt.key && strings.Contains(p.Problem, tt.problem) {
					found = true
				}
			}
			assert.True(t, found, "want %s: ...%s..., got %v", tt.key, tt.problem, err)
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	_, err := Load(writeFile(t, t.TempDir(), "site: {name: a}\nreplication: {mode: fast, timeout: x}\nbogus: 1\n"))
	require.Error(t, err)
	var ce *Error
	require.True(t, errors.As(err, &ce))
	var keys []string
	for _, p := range ce.Problems {
		keys = append(keys, p.Key)
	}
	assert.ElementsMatch(t, []string{"bogus", "replication.timeout", "site.repos", "site.state", "replication.mode"}, keys)
	assert.Contains(t, err.Error(), "has 5 problems:")
	assert.Contains(t, err.Error(), "config "+ce.File)
	var fe *FieldError
	assert.True(t, errors.As(err, &fe))
}

func TestSyntaxError(t *testing.T) {
	_, err := Load(writeFile(t, t.TempDir(), "site: {name: a\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "config ")
}

// Acks are checked only where a project can actually land: shadowed or
// disjoint rules are not false alarms.
func TestAcksCheckedOnlyWherePlacementsMeet(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{"rule shadows the small placement", site + peers +
			"replication: {acks: 3, projects: [{match: 'tango/**', acks: 1}]}\nshard: {projects: [{match: 'tango/**', sites: [b]}]}\n"},
		{"small placement covers everything the big rule matches", site + peers +
			"replication: {projects: [{match: 'big/*', acks: 3}]}\nshard: {projects: [{match: 'solo/*', sites: [b]}]}\n"},
		{"sync and async need no acks check", site + peers +
			"replication: {mode: sync, acks: 3, projects: [{match: 'x/*', mode: async}]}\nshard: {projects: [{match: '**', sites: [b]}]}\n"},
		{"earlier shard rule takes the overlap", site + peers +
			"replication: {projects: [{match: 'a/*', acks: 3}]}\nshard: {projects: [{match: 'a/*', sites: [a, b, c]}, {match: '**', sites: [a]}]}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.yaml)
			assert.NoError(t, err)
		})
	}
}

func TestRuleAndPlacement(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	require.NoError(t, err)
	tests := []struct {
		name      string
		project   string
		rule      ReplicationRule
		placement []string
	}{
		{"global", "platform/core", ReplicationRule{Mode: ModeQuorum, Acks: 2, Timeout: 10 * time.Second, Override: -1}, []string{"a", "b", "c"}},
		{"sync override", "All-Users", ReplicationRule{Mode: ModeSync, Acks: 3, Timeout: 30 * time.Second, Override: 0}, []string{"a", "b", "c"}},
		{"local project", "tango/core/x", ReplicationRule{Mode: ModeQuorum, Acks: 1, Timeout: 10 * time.Second, Override: 1}, []string{"b"}},
		{"async override", "scratch/mine", ReplicationRule{Mode: ModeAsync, Acks: 1, Timeout: 10 * time.Second, Override: 2}, []string{"a", "b", "c"}},
		{"star stays in its segment", "scratch/a/b", ReplicationRule{Mode: ModeQuorum, Acks: 2, Timeout: 10 * time.Second, Override: -1}, []string{"a", "b", "c"}},
		{"two-site placement", "plugins/replication", ReplicationRule{Mode: ModeQuorum, Acks: 2, Timeout: 10 * time.Second, Override: -1}, []string{"a", "c"}},
		{"not under tango", "tango", ReplicationRule{Mode: ModeQuorum, Acks: 2, Timeout: 10 * time.Second, Override: -1}, []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.rule, c.Rule(tt.project))
			assert.Equal(t, tt.placement, c.Placement(tt.project))
			for _, s := range c.Sites() {
				assert.Equal(t, contains(tt.placement, s), c.Holds(s, tt.project), "site %s", s)
			}
		})
	}
	// Callers own the slices they get.
	p := c.Placement("tango/x")
	p[0] = "zz"
	assert.Equal(t, []string{"b"}, c.Placement("tango/x"))
	s := c.Sites()
	s[0] = "zz"
	assert.Equal(t, "a", c.Sites()[0])
}

func TestRefClasses(t *testing.T) {
	c := mustParse(t, site)
	tests := []struct {
		ref             string
		guarded, notedb bool
	}{
		{"refs/heads/main", true, false},
		{"refs/cache-automerge/ab/cdef0123", false, false},
		{"refs/changes/45/12345/meta", true, true},
		{"refs/changes/45/12345/1", true, false},
		{"refs/draft-comments/45/12345/1000001", true, true},
		{"refs/sequences/changes", true, true},
		{"refs/meta/external-ids", true, true},
		{"refs/meta/config", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			assert.Equal(t, tt.guarded, c.Guarded(tt.ref))
			assert.Equal(t, tt.notedb, c.NoteDBRef(tt.ref))
		})
	}
}

func TestAccessorsNeedValidation(t *testing.T) {
	assert.Panics(t, func() { Default().Rule("x") })
	c := Default()
	c.Site = Site{Name: "a", Repos: "/r", State: "/s"}
	c.HTTP.URL = "http://a"
	c.Mesh.Cert, c.Mesh.Key = "a.pem", "a-key.pem"
	require.NoError(t, c.Validate())
	assert.Equal(t, []string{"a"}, c.Placement("x"))
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		err  string
	}{
		{in: "16MiB", want: 16 << 20},
		{in: "64KiB", want: 64 << 10},
		{in: "64 kib", want: 64 << 10},
		{in: "1GiB", want: 1 << 30},
		{in: "2TiB", want: 2 << 40},
		{in: "100KB", want: 100_000},
		{in: "5MB", want: 5_000_000},
		{in: "512B", want: 512},
		{in: "1048576", want: 1 << 20},
		{in: "1.5MiB", err: "unknown unit"},
		{in: "MiB", err: "want an integer"},
		{in: "16M", err: "unknown unit"},
		{in: "99999999999999999999", err: "too large"},
		{in: "9000000TiB", err: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			back, err := ParseByteSize(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, back, "String round trip")
		})
	}
}

func TestDiff(t *testing.T) {
	a := mustParse(t, site+peers)
	b := mustParse(t, strings.Replace(site+peers, "10.0.0.3", "10.0.0.9", 1)+"replication: {mode: sync}\n")
	assert.Equal(t, []string{"mesh.peers[1].addr", "replication.mode"}, Diff(a, b))
	c := mustParse(t, site+"replication: {acks: 1}\n")
	assert.Equal(t, []string{"mesh.peers"}, Diff(mustParse(t, site), mustParse(t, site+peers)))
	assert.Equal(t, []string{"replication.acks"}, Diff(mustParse(t, site), c))
	assert.Empty(t, Diff(a, mustParse(t, site+peers)))
	for _, k := range []string{"replication", "replication.mode", "shard.projects[0].sites", "notedb.max_bytes"} {
		assert.True(t, isLive(k), k)
	}
	for _, k := range []string{"site.name", "http.listen", "mesh.peers", "refdb.backend", "replicationx"} {
		assert.False(t, isLive(k), k)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
