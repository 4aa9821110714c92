package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/sitesync/sitesync/internal/glob"
	"github.com/sitesync/sitesync/notedbfast"
	"github.com/sitesync/sitesync/packsync"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/shard"
)

// Config is one snapshot of the configuration file. Field tags name the keys.
type Config struct {
	Site        Site        `mapstructure:"site"`
	HTTP        HTTP        `mapstructure:"http"`
	Mesh        Mesh        `mapstructure:"mesh"`
	RefDB       RefDB       `mapstructure:"refdb"`
	Replication Replication `mapstructure:"replication"`
	Shard       Shard       `mapstructure:"shard"`
	Projects    Projects    `mapstructure:"projects"`
	NoteDB      NoteDB      `mapstructure:"notedb"`

	// compiled is filled by Validate; the accessors need it.
	compiled *compiled
}

// Site is this site's identity and disk layout.
type Site struct {
	Name  string `mapstructure:"name"`  // required; lower-case letters, digits, '-', '_'
	Repos string `mapstructure:"repos"` // required: bare repositories, <project>.git
	State string `mapstructure:"state"` // required: journal, socket, instance id
}

// HTTP is the git smart-HTTP front door and API.
type HTTP struct {
	Listen string `mapstructure:"listen"`
	URL    string `mapstructure:"url"` // how clients and other sites reach Listen
}

// Mesh is the QUIC mesh between sites.
type Mesh struct {
	Listen       string   `mapstructure:"listen"`
	CA           string   `mapstructure:"ca"`
	Cert         string   `mapstructure:"cert"`
	Key          string   `mapstructure:"key"`
	Peers        []Peer   `mapstructure:"peers"`
	MaxFrame     ByteSize `mapstructure:"max_frame"`
	MaxPack      ByteSize `mapstructure:"max_pack"`
	StreamWindow ByteSize `mapstructure:"stream_window"`
	ConnWindow   ByteSize `mapstructure:"conn_window"`
}

// Peer is another site.
type Peer struct {
	Name string `mapstructure:"name"` // its site.name, also the name in its certificate
	Addr string `mapstructure:"addr"` // its mesh.listen as reachable from here
	URL  string `mapstructure:"url"`  // its http.url (redirects for projects it holds)
}

// Backend names a refdb implementation.
type Backend string

// The refdb backends.
const (
	BackendTiKV     Backend = "tikv"
	BackendEtcd     Backend = "etcd"
	BackendEmbedded Backend = "embedded" // in-process; demo and tests only
	BackendNone     Backend = "none"     // no global ref database; one site only
)

// RefDB is the global ref database.
type RefDB struct {
	Backend   Backend  `mapstructure:"backend"`
	Endpoints []string `mapstructure:"endpoints"` // PD endpoints for tikv, etcd endpoints for etcd
	Prefix    string   `mapstructure:"prefix"`
	Ignore    []string `mapstructure:"ignore"` // ref globs that are not guarded
	// MaxTxnOps is etcd's --max-txn-ops (default 128, etcd's own): the
	// most refs one refdb transaction takes. A larger write is decided in
	// several transactions, or refused when it must be atomic. Raise it
	// together with the etcd servers' --max-txn-ops (and
	// --max-request-bytes, about 200 bytes a ref).
	MaxTxnOps int `mapstructure:"max_txn_ops"`
}

// Projects are defaults for projects created here.
type Projects struct {
	// DefaultHead is the branch HEAD of a new project points at when its
	// creation names none (PUT /api/v1/projects/{name} without "head").
	DefaultHead string `mapstructure:"default_head"`
}

// DefaultHead is the default projects.default_head.
const DefaultHead = "refs/heads/main"

// Mode is a replication ack rule.
type Mode string

// The replication modes.
const (
	ModeAsync  Mode = "async"  // acknowledge when the origin is durable
	ModeQuorum Mode = "quorum" // acknowledge when Acks placement sites are durable
	ModeSync   Mode = "sync"   // acknowledge when every placement site is durable
)

// Replication is the ack rule: a global default and per-project overrides.
type Replication struct {
	Mode Mode `mapstructure:"mode"`
	// Acks is the quorum, origin included; nil means min(DefaultAcks, placement).
	Acks     *int                  `mapstructure:"acks"`
	Timeout  time.Duration         `mapstructure:"timeout"`
	Projects []ReplicationOverride `mapstructure:"projects"`
}

// ReplicationOverride is one replication.projects entry; unset fields inherit
// the global value.
type ReplicationOverride struct {
	Match   string         `mapstructure:"match"`
	Mode    Mode           `mapstructure:"mode"`
	Acks    *int           `mapstructure:"acks"`
	Timeout *time.Duration `mapstructure:"timeout"`
}

// Shard places projects on sites.
type Shard struct {
	Projects []ShardRule `mapstructure:"projects"`
}

// ShardRule is one shard.projects entry: projects matching Match are held by
// Sites only.
type ShardRule struct {
	Match string   `mapstructure:"match"`
	Sites []string `mapstructure:"sites"`
}

// NoteDB configures the NoteDb fast path.
type NoteDB struct {
	Refs     []string `mapstructure:"refs"` // ref globs of NoteDb namespaces
	MaxBytes ByteSize `mapstructure:"max_bytes"`
}

// Defaults that are not obvious from Default.
const (
	// DefaultAcks is the quorum when replication.acks is unset: the origin
	// plus one more site, so an acknowledged write survives the loss of any
	// one site while waiting only for the nearest peer. Capped at the number
	// of sites that hold the project.
	DefaultAcks = 2
	// DefaultTimeout is how long a write waits for its ack rule: well above
	// the 150–200 ms intercontinental RTT plus a refdb commit, short enough
	// that a git client is told about a partition instead of hanging.
	DefaultTimeout = 10 * time.Second
)

// DefaultNoteDBRefs are the NoteDb namespaces of DESIGN.md §5: the fast
// path's own list.
var DefaultNoteDBRefs = slices.Clone(notedbfast.DefaultRefs)

// Default returns the configuration with every default of DESIGN.md §7 and
// the required keys empty. Derived defaults (http.url, mesh.cert, mesh.key)
// are filled in by Parse once site.name and http.listen are known.
func Default() *Config {
	return &Config{
		HTTP: HTTP{Listen: "127.0.0.1:8080"},
		Mesh: Mesh{
			Listen:       "127.0.0.1:7443",
			CA:           "certs/ca.pem",
			MaxFrame:     16 << 20,
			MaxPack:      packsync.DefaultMaxPack,
			StreamWindow: 32 << 20,
			ConnWindow:   64 << 20,
		},
		RefDB: RefDB{
			Backend:   BackendEtcd,
			Endpoints: []string{"127.0.0.1:2379"},
			Prefix:    "/sitesync",
			Ignore:    []string{"refs/cache-automerge/**"},
			MaxTxnOps: refdb.DefaultMaxTxnOps,
		},
		Replication: Replication{Mode: ModeQuorum, Timeout: DefaultTimeout},
		Projects:    Projects{DefaultHead: DefaultHead},
		NoteDB: NoteDB{
			Refs:     append([]string(nil), DefaultNoteDBRefs...),
			MaxBytes: 64 << 10,
		},
	}
}

// FieldError is one problem with one key.
type FieldError struct {
	Key     string // key path, e.g. "mesh.peers[1].name"
	Problem string
}

func (e *FieldError) Error() string {
	if e.Key == "" {
		return e.Problem
	}
	return e.Key + ": " + e.Problem
}

// Error is an invalid configuration: every problem found (unknown keys and
// keys of the wrong shape first, then values that do not decode, then values
// that do not validate).
type Error struct {
	File     string // "" when not loaded from a file
	Problems []*FieldError
}

func (e *Error) Error() string {
	where := "config"
	if e.File != "" {
		where = "config " + e.File
	}
	if len(e.Problems) == 1 {
		return where + ": " + e.Problems[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s has %d problems:", where, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns the problems, so errors.As finds each *FieldError.
func (e *Error) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// Load reads, decodes and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(bytes.NewReader(data), filepath.Dir(abs))
	var ce *Error
	if errors.As(err, &ce) {
		ce.File = path
	} else if err != nil {
		err = fmt.Errorf("config %s: %w", path, err)
	}
	return c, err
}

// Parse decodes YAML over Default and validates the result. Relative paths are
// resolved against dir (unless dir is ""). The error is an *Error listing every
// problem, or a YAML syntax error.
func Parse(r io.Reader, dir string) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(r); err != nil {
		return nil, err
	}
	var problems []*FieldError
	problems = append(problems, unknownKeys("", v.AllSettings(), reflect.TypeOf(Config{}))...)

	c := Default()
	err := v.Unmarshal(c, func(dc *mapstructure.DecoderConfig) {
		dc.DecodeHook = decodeHook
		dc.WeaklyTypedInput = false // "acks: yes" is a mistake, not 1
		dc.ErrorUnused = false      // unknownKeys reports those, with better paths
		dc.ZeroFields = false       // decode over the defaults
	})
	// The shape walk above already reported keys of the wrong shape; report
	// each key once.
	reported := map[string]bool{}
	for _, p := range problems {
		reported[p.Key] = true
	}
	for _, p := range decodeProblems(err) {
		if !reported[p.Key] {
			problems = append(problems, p)
		}
	}

	c.fillDerived(dir)
	if err := c.Validate(); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			problems = append(problems, ce.Problems...)
		}
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return c, nil
}

// fillDerived sets defaults that depend on other keys and resolves relative
// paths against dir.
func (c *Config) fillDerived(dir string) {
	if c.Mesh.Cert == "" && c.Site.Name != "" {
		c.Mesh.Cert = "certs/" + c.Site.Name + ".pem"
	}
	if c.Mesh.Key == "" && c.Site.Name != "" {
		c.Mesh.Key = "certs/" + c.Site.Name + "-key.pem"
	}
	if c.HTTP.URL == "" {
		if host, port, err := net.SplitHostPort(c.HTTP.Listen); err == nil && host != "" && !isUnspecified(host) {
			c.HTTP.URL = "http://" + net.JoinHostPort(host, port)
		}
	}
	if dir == "" {
		return
	}
	for _, p := range []*string{&c.Site.Repos, &c.Site.State, &c.Mesh.CA, &c.Mesh.Cert, &c.Mesh.Key} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

func isUnspecified(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	byteSizeType = reflect.TypeOf(ByteSize(0))
)

// decodeHook parses durations and byte sizes. A bare number is refused for a
// duration: "timeout: 10" would otherwise mean ten nanoseconds.
func decodeHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	switch to {
	case durationType:
		switch d := data.(type) {
		case string:
			v, err := time.ParseDuration(strings.TrimSpace(d))
			if err != nil {
				return nil, fmt.Errorf("bad duration %q: want a number with a unit, e.g. \"10s\" or \"500ms\"", d)
			}
			return v, nil
		case time.Duration:
			return d, nil
		default:
			return nil, fmt.Errorf("bad duration %v: needs a unit, e.g. \"%vs\"", data, data)
		}
	case byteSizeType:
		switch d := data.(type) {
		case string:
			return ParseByteSize(d)
		case ByteSize:
			return d, nil
		case int:
			return ByteSize(d), nil
		case int64:
			return ByteSize(d), nil
		case uint64:
			if d > 1<<62 {
				return nil, fmt.Errorf("bad byte size %d: too large", d)
			}
			return ByteSize(d), nil
		default:
			return nil, fmt.Errorf("bad byte size %v: want an integer with an optional unit, e.g. \"16MiB\"", data)
		}
	}
	return data, nil
}

// decodeProblems turns mapstructure's error tree into one FieldError per
// field, keyed by mapstructure's field path (which is our key path).
func decodeProblems(err error) []*FieldError {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*FieldError
		for _, e := range j.Unwrap() {
			out = append(out, decodeProblems(e)...)
		}
		return out
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) {
		inner := de.Unwrap()
		var nested *mapstructure.DecodeError
		if errors.As(inner, &nested) {
			return decodeProblems(inner)
		}
		problem := inner.Error()
		var ut *mapstructure.UnconvertibleTypeError
		if errors.As(inner, &ut) {
			problem = fmt.Sprintf("want %s, got %s %v", friendlyType(ut.Expected.Type()), friendlyValueType(ut.Value), ut.Value)
		}
		return []*FieldError{{Key: de.Name(), Problem: problem}}
	}
	return []*FieldError{{Problem: err.Error()}}
}

func friendlyType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Ptr:
		return friendlyType(t.Elem())
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

func friendlyValueType(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	case string:
		return "string"
	case int, int64, uint64:
		return "integer"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// unknownKeys walks the raw settings against the struct's mapstructure tags
// and reports every key that names no field, with a suggestion for typos, and
// every mapping or list given as something else.
func unknownKeys(path string, raw any, t reflect.Type) []*FieldError {
	for t.Kind() == reflect.Ptr {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			if raw == nil {
				return nil // "key:" with no value keeps the default
			}
			return []*FieldError{{Key: path, Problem: fmt.Sprintf("want a mapping, got %s", friendlyValueType(raw))}}
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if tag := f.Tag.Get("mapstructure"); tag != "" && f.IsExported() {
				fields[tag] = f.Type
				names = append(names, tag)
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []*FieldError
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			ft, ok := fields[strings.ToLower(k)]
			if !ok {
				problem := "unknown key"
				if s := suggest(strings.ToLower(k), names); s != "" {
					problem += fmt.Sprintf(" (did you mean %q?)", s)
				}
				out = append(out, &FieldError{Key: p, Problem: problem})
				continue
			}
			out = append(out, unknownKeys(p, m[k], ft)...)
		}
		return out
	case reflect.Slice:
		l, ok := raw.([]any)
		if !ok {
			if raw == nil {
				return nil
			}
			return []*FieldError{{Key: path, Problem: fmt.Sprintf("want a list, got %s %v", friendlyValueType(raw), raw)}}
		}
		var out []*FieldError
		for i, e := range l {
			out = append(out, unknownKeys(fmt.Sprintf("%s[%d]", path, i), e, t.Elem())...)
		}
		return out
	}
	return nil
}

// suggest returns the name closest to k if it is a plausible typo.
func suggest(k string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// compiled holds what Validate derives once for the accessors.
type compiled struct {
	sites []string
	repl  []*glob.Pattern
	shard []*glob.Pattern
	// placement is shard.projects over sites; it answers Placement and Holds.
	placement *shard.Map
	ignore    []*glob.Pattern
	notedb    []*glob.Pattern
}
