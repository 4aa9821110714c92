package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sitesync/sitesync/internal/glob"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/shard"
)

// siteNameRE is a safe site name: it becomes part of file names (certs), refdb
// records, log lines and certificate names, so nothing that needs quoting.
var siteNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// maxFrameLimit bounds mesh.max_frame: a frame is held in memory whole, and a
// peer may send many at once; beyond this a misconfiguration, not a choice.
const maxFrameLimit = 1 << 30

type validator struct{ problems []*FieldError }

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, &FieldError{Key: key, Problem: fmt.Sprintf(format, args...)})
}

// Validate checks every key and the relations between keys, and prepares the
// accessors (Rule, Placement, …). It returns an *Error listing every problem.
// Call it before sharing the Config; Load and Parse already did.
func (c *Config) Validate() error {
	var v validator
	comp := &compiled{}

	// site
	switch {
	case c.Site.Name == "":
		v.add("site.name", "required")
	case !siteNameRE.MatchString(c.Site.Name):
		v.add("site.name", "bad site name %q: use 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit", c.Site.Name)
	}
	if c.Site.Repos == "" {
		v.add("site.repos", "required")
	}
	if c.Site.State == "" {
		v.add("site.state", "required")
	}
	if c.Site.Repos != "" && c.Site.Repos == c.Site.State {
		v.add("site.state", "must differ from site.repos")
	}

	// http
	v.listen("http.listen", c.HTTP.Listen)
	if c.HTTP.URL == "" {
		v.add("http.url", "required when http.listen (%q) does not name a host", c.HTTP.Listen)
	} else {
		v.url("http.url", c.HTTP.URL)
	}

	// mesh
	v.listen("mesh.listen", c.Mesh.Listen)
	for _, f := range []struct{ key, val string }{{"mesh.ca", c.Mesh.CA}, {"mesh.cert", c.Mesh.Cert}, {"mesh.key", c.Mesh.Key}} {
		if f.val == "" {
			v.add(f.key, "required")
		}
	}
	comp.sites = []string{c.Site.Name}
	names := map[string]int{}
	addrs := map[string]int{}
	for i, p := range c.Mesh.Peers {
		key := fmt.Sprintf("mesh.peers[%d]", i)
		switch {
		case p.Name == "":
			v.add(key+".name", "required")
		case !siteNameRE.MatchString(p.Name):
			v.add(key+".name", "bad site name %q: use 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit", p.Name)
		case p.Name == c.Site.Name:
			v.add(key+".name", "%q is this site's own name (site.name); list only the other sites", p.Name)
		default:
			if j, dup := names[p.Name]; dup {
				v.add(key+".name", "duplicate %q (also mesh.peers[%d])", p.Name, j)
			} else {
				names[p.Name] = i
				comp.sites = append(comp.sites, p.Name)
			}
		}
		if p.Addr == "" {
			v.add(key+".addr", "required")
		} else if v.dial(key+".addr", p.Addr) {
			if j, dup := addrs[p.Addr]; dup {
				v.add(key+".addr", "duplicate %q (also mesh.peers[%d])", p.Addr, j)
			} else {
				addrs[p.Addr] = i
			}
		}
		if p.URL == "" {
			v.add(key+".url", "required (where clients are redirected for projects this site holds)")
		} else {
			v.url(key+".url", p.URL)
		}
	}
	v.size("mesh.max_frame", c.Mesh.MaxFrame, maxFrameLimit)
	v.size("mesh.max_pack", c.Mesh.MaxPack, 0)
	v.size("mesh.stream_window", c.Mesh.StreamWindow, 0)
	v.size("mesh.conn_window", c.Mesh.ConnWindow, 0)
	if c.Mesh.StreamWindow > 0 && c.Mesh.ConnWindow > 0 && c.Mesh.ConnWindow < c.Mesh.StreamWindow {
		v.add("mesh.conn_window", "%v is smaller than mesh.stream_window (%v): one stream could never use its window", c.Mesh.ConnWindow, c.Mesh.StreamWindow)
	}

	// refdb
	switch c.RefDB.Backend {
	case BackendTiKV, BackendEtcd:
		if len(c.RefDB.Endpoints) == 0 {
			v.add("refdb.endpoints", "required for backend %q", c.RefDB.Backend)
		}
		for i, e := range c.RefDB.Endpoints {
			v.dial(fmt.Sprintf("refdb.endpoints[%d]", i), e)
		}
	case BackendEmbedded:
	case BackendNone:
		if len(c.Mesh.Peers) > 0 {
			v.add("refdb.backend", "%q cannot guard refs across sites, and mesh.peers lists %d; use tikv or etcd", c.RefDB.Backend, len(c.Mesh.Peers))
		}
	default:
		v.add("refdb.backend", "unknown backend %q (want tikv, etcd, embedded or none)", c.RefDB.Backend)
	}
	switch {
	case c.RefDB.Prefix == "":
		v.add("refdb.prefix", "required")
	case !strings.HasPrefix(c.RefDB.Prefix, "/"):
		v.add("refdb.prefix", "%q must start with '/'", c.RefDB.Prefix)
	case strings.ContainsFunc(c.RefDB.Prefix, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		v.add("refdb.prefix", "%q contains spaces or control characters", c.RefDB.Prefix)
	}
	if h := c.Projects.DefaultHead; !strings.HasPrefix(h, "refs/heads/") || refdb.ValidateRef(h) != nil {
		v.add("projects.default_head", "%q is not a branch (refs/heads/...)", h)
	}
	if c.RefDB.MaxTxnOps < 1 {
		v.add("refdb.max_txn_ops", "%d: want at least 1 (the etcd servers' --max-txn-ops)", c.RefDB.MaxTxnOps)
	}
	comp.ignore = v.refGlobs("refdb.ignore", c.RefDB.Ignore)

	// replication
	v.mode("replication.mode", c.Replication.Mode, false)
	v.acks("replication.acks", c.Replication.Acks)
	if c.Replication.Timeout <= 0 {
		v.add("replication.timeout", "must be positive, got %v", c.Replication.Timeout)
	}
	for i, r := range c.Replication.Projects {
		key := fmt.Sprintf("replication.projects[%d]", i)
		comp.repl = append(comp.repl, v.pattern(key+".match", r.Match))
		v.mode(key+".mode", r.Mode, true)
		v.acks(key+".acks", r.Acks)
		if r.Timeout != nil && *r.Timeout <= 0 {
			v.add(key+".timeout", "must be positive, got %v", *r.Timeout)
		}
	}

	// shard
	known := map[string]bool{}
	for _, s := range comp.sites {
		known[s] = true
	}
	for i, r := range c.Shard.Projects {
		key := fmt.Sprintf("shard.projects[%d]", i)
		comp.shard = append(comp.shard, v.pattern(key+".match", r.Match))
		if len(r.Sites) == 0 {
			v.add(key+".sites", "required: at least one site")
		}
		seen := map[string]bool{}
		for _, s := range r.Sites {
			switch {
			case !known[s]:
				v.add(key+".sites", "unknown site %q (want site.name or a mesh.peers name)", s)
			case seen[s]:
				v.add(key+".sites", "duplicate %q", s)
			}
			seen[s] = true
		}
	}

	// notedb
	comp.notedb = v.refGlobs("notedb.refs", c.NoteDB.Refs)
	v.size("notedb.max_bytes", c.NoteDB.MaxBytes, 0)
	if c.NoteDB.MaxBytes > 0 && c.Mesh.MaxFrame > 0 && c.NoteDB.MaxBytes > c.Mesh.MaxFrame {
		v.add("notedb.max_bytes", "%v exceeds mesh.max_frame (%v): a delta that size could not be sent", c.NoteDB.MaxBytes, c.Mesh.MaxFrame)
	}

	// The acks check needs every rule's pattern; it runs even when other
	// keys have problems, so that one pass reports everything it can.
	if !slices.Contains(comp.repl, nil) && !slices.Contains(comp.shard, nil) {
		v.checkAcks(c, comp)
	}
	if len(v.problems) == 0 {
		rules := make([]shard.Rule, len(c.Shard.Projects))
		for i, r := range c.Shard.Projects {
			rules[i] = shard.Rule{Match: r.Match, Sites: r.Sites}
		}
		m, err := shard.NewMap(comp.sites, rules)
		if err != nil { // the checks above make this unreachable
			v.add("shard", "%v", err)
		}
		comp.placement = m
	}
	if len(v.problems) > 0 {
		return &Error{Problems: v.problems}
	}
	c.compiled = comp
	return nil
}

// checkAcks proves that no quorum asks for more sites than hold the project.
//
// The acks that apply to a project come from the first replication rule that
// matches it (or the global rule), and the sites that hold it from the first
// shard rule that matches it (or every site). Project names are unbounded, so
// instead of enumerating names we enumerate the pairs (replication slot r,
// placement slot s) — |replication.projects|+1 by |shard.projects|+1 — and,
// only for pairs where quorum acks exceed the placement's size, ask whether
// the pair is reachable: is there a name that matches rule r but none of the
// replication rules before it, and shard rule s but none of the shard rules
// before it? glob.Witness answers that exactly (an automaton product, not a
// heuristic) and returns the shortest such name, which the error quotes. So a
// rule that is shadowed by an earlier one, or two rules that cannot both match
// one name, never cause a false alarm, and every alarm comes with an example.
// Only pairs whose effective mode is quorum are checked: async and sync do not
// read acks. An unset acks is never an error: it means min(DefaultAcks,
// placement).
func (v *validator) checkAcks(c *Config, comp *compiled) {
	nr, ns := len(c.Replication.Projects), len(c.Shard.Projects)
	for r := 0; r <= nr; r++ {
		mode, acks, acksKey := c.Replication.Mode, c.Replication.Acks, "replication.acks"
		var include, exclude []*glob.Pattern
		if r < nr {
			o := c.Replication.Projects[r]
			if o.Mode != "" {
				mode = o.Mode
			}
			if o.Acks != nil {
				acks, acksKey = o.Acks, fmt.Sprintf("replication.projects[%d].acks", r)
			}
			include = append(include, comp.repl[r])
			exclude = append(exclude, comp.repl[:r]...)
		} else {
			exclude = append(exclude, comp.repl...)
		}
		if mode != ModeQuorum || acks == nil {
			continue
		}
		for s := 0; s <= ns; s++ {
			n, where := len(comp.sites), ""
			inc, exc := include, exclude
			if s < ns {
				n, where = len(c.Shard.Projects[s].Sites), fmt.Sprintf(" (placed by shard.projects[%d])", s)
				inc = append(append([]*glob.Pattern(nil), inc...), comp.shard[s])
				exc = append(append([]*glob.Pattern(nil), exc...), comp.shard[:s]...)
			} else {
				exc = append(append([]*glob.Pattern(nil), exc...), comp.shard...)
			}
			if *acks <= n {
				continue
			}
			name, ok, err := glob.Witness(inc, exc)
			switch {
			case errors.Is(err, glob.ErrTooComplex):
				v.add(acksKey, "cannot prove %d acks fit every placement: match patterns too complex to compare", *acks)
			case ok:
				v.add(acksKey, "%d exceeds the %s that %s project %q%s", *acks, plural(n, "site"), verb(n), name, where)
			}
		}
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func verb(n int) string {
	if n == 1 {
		return "holds"
	}
	return "hold"
}

func (v *validator) mode(key string, m Mode, optional bool) {
	switch m {
	case ModeAsync, ModeQuorum, ModeSync:
	case "":
		if !optional {
			v.add(key, "required (async, quorum or sync)")
		}
	default:
		v.add(key, "unknown mode %q (want async, quorum or sync)", m)
	}
}

func (v *validator) acks(key string, a *int) {
	if a != nil && *a < 1 {
		v.add(key, "must be at least 1 (the origin), got %d", *a)
	}
}

func (v *validator) size(key string, b, max ByteSize) {
	switch {
	case b <= 0:
		v.add(key, "must be positive, got %d", int64(b))
	case max > 0 && b > max:
		v.add(key, "%v exceeds the limit of %v", b, max)
	}
}

func (v *validator) pattern(key, p string) *glob.Pattern {
	if p == "" {
		v.add(key, "required")
		return nil
	}
	g, err := glob.Compile(p)
	if err != nil {
		v.add(key, "%v", err)
	}
	return g
}

func (v *validator) refGlobs(key string, ps []string) []*glob.Pattern {
	var out []*glob.Pattern
	for i, p := range ps {
		k := fmt.Sprintf("%s[%d]", key, i)
		g := v.pattern(k, p)
		if g != nil && !strings.HasPrefix(p, "refs/") {
			v.add(k, "ref pattern %q must start with \"refs/\"", p)
		}
		out = append(out, g)
	}
	return out
}

// listen checks an address to listen on: host may be empty, port may be 0.
func (v *validator) listen(key, addr string) {
	if addr == "" {
		v.add(key, "required")
		return
	}
	if _, _, ok := v.hostPort(key, addr, 0); !ok {
		return
	}
}

// dial checks an address to connect to: host and a non-zero port required.
func (v *validator) dial(key, addr string) bool {
	host, _, ok := v.hostPort(key, addr, 1)
	if ok && host == "" {
		v.add(key, "bad address %q: host required", addr)
		return false
	}
	return ok
}

func (v *validator) hostPort(key, addr string, minPort int) (string, int, bool) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(key, "bad address %q: want host:port", addr)
		return "", 0, false
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < minPort || port > 65535 {
		v.add(key, "bad port in %q: want %d-65535", addr, minPort)
		return "", 0, false
	}
	if strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' }) {
		v.add(key, "bad host in %q", addr)
		return "", 0, false
	}
	return host, port, true
}

func (v *validator) url(key, s string) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.add(key, "bad URL %q: %v", s, errors.Unwrap(err))
	case u.Scheme != "http" && u.Scheme != "https":
		v.add(key, "bad URL %q: want http:// or https://", s)
	case u.Host == "":
		v.add(key, "bad URL %q: no host", s)
	case u.RawQuery != "" || u.Fragment != "":
		v.add(key, "bad URL %q: no query or fragment allowed", s)
	}
}
