package shard

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/sitesync/sitesync/internal/glob"
)

// HAProxyOptions says how to render a Map for HAProxy.
type HAProxyOptions struct {
	// URLs maps every site to its front door's http.url.
	URLs map[string]string
	// MapPath is where the map file will be installed; the configuration
	// refers to it.
	MapPath string
	// Bind is the frontend's bind address, e.g. "*:80".
	Bind string
	// Source names the configuration file, for the header comments.
	Source string
}

// HAProxyConfig is a Map rendered for HAProxy.
type HAProxyConfig struct {
	// Map is the map file: request path prefix → backend name, for map_beg.
	Map string
	// Config is the HAProxy configuration that uses Map: a frontend, one
	// backend per placement, and a default backend for global projects.
	Config string
	// Notes say, per rule, where the map is wider than the rule or cannot
	// express it; they are also comments in Map.
	Notes []string
}

// GlobalBackend is the backend of global projects (every site).
const GlobalBackend = "sitesync_global"

// apiProjects is the path of the project API; names are one escaped segment.
const apiProjects = "/api/v1/projects/"

// BackendName is the HAProxy backend of a placement: "site_a" for one site,
// "sites_a.c" for several ('.' cannot occur in a site name).
func BackendName(sites []string) string {
	if len(sites) == 1 {
		return "site_" + sites[0]
	}
	return "sites_" + strings.Join(sites, ".")
}

// HAProxy renders m as an HAProxy map plus the configuration using it.
//
// HAProxy's map_beg picks the longest matching prefix; sitesync picks the
// first matching rule, and a glob says more than a prefix. So each rule gives
// the literal part of its pattern before the first wildcard as a prefix of
// the git paths (/{project}.git/...) and of the API paths
// (/api/v1/projects/{escaped name}). A rule "L/**" and a literal rule are
// rendered exactly; a rule with a wildcard after a literal part ("tango/*")
// gets a prefix that is wider than the rule (a note names a project the
// wider prefix sends to the wrong sites, when a later rule makes one exist;
// global projects do not count, every site holds them); a rule that starts with a
// wildcard cannot be rendered and its projects go to the default backend. A
// request that the map sends to a site not holding its project is still
// answered correctly: that front door redirects it (307) to a site that does.
// Global projects are held by every site, so any backend serves them.
func HAProxy(m *Map, opt HAProxyOptions) (HAProxyConfig, error) {
	var out HAProxyConfig
	servers := map[string]string{}
	for _, s := range m.sites {
		addr, tls, err := serverAddr(opt.URLs[s])
		if err != nil {
			return out, fmt.Errorf("site %q: %w", s, err)
		}
		if tls {
			addr += " ssl verify required ca-file @system-ca"
		}
		servers[s] = addr
	}

	var mp strings.Builder
	fmt.Fprintf(&mp, "# sitesync shard map generated from %s\n", opt.Source)
	fmt.Fprintf(&mp, "# request path prefix -> backend; used by map_beg (longest prefix wins).\n")
	fmt.Fprintf(&mp, "# Projects no line matches are global: backend %s.\n", GlobalBackend)
	fmt.Fprintf(&mp, "# A request the map sends to a site that does not hold its project is\n")
	fmt.Fprintf(&mp, "# redirected (307) by that site's front door, so a wider prefix costs a\n")
	fmt.Fprintf(&mp, "# redirect, never a wrong answer (e.g. the API key of project p also\n")
	fmt.Fprintf(&mp, "# matches pq).\n")
	type keyed struct {
		rule int
		key  string
	}
	taken := map[string]int{} // key → rule that emitted it
	var backends [][]string
	note := func(format string, args ...any) {
		n := fmt.Sprintf(format, args...)
		out.Notes = append(out.Notes, n)
		fmt.Fprintf(&mp, "# NOTE: %s\n", n)
	}
	var emitted []keyed
	for i, r := range m.rules {
		where := fmt.Sprintf("shard.projects[%d] %q → %s", i, r.Match, strings.Join(r.Sites, ", "))
		fmt.Fprintf(&mp, "\n# %s\n", where)
		if _, ok, err := glob.Witness(m.pats[i:i+1], m.pats[:i]); err == nil && !ok {
			note("%s never applies (earlier rules match every project it matches); not in the map", where)
			continue
		}
		keys, exact := mapKeys(r.Match)
		if len(keys) == 0 {
			note("%s starts with a wildcard, which a path prefix cannot express; its projects reach the default backend %s and are redirected (307) by the front door", where, GlobalBackend)
			continue
		}
		if !exact {
			if k, name, ok := widerMatters(m, i); ok {
				note("%s: prefix %q is wider than the pattern and also matches projects that shard.projects[%d] places elsewhere (e.g. %q); HAProxy sends those here and the front door redirects them (307)", where, keys[0], k, name)
			}
		}
		backend := BackendName(r.Sites)
		if !slices.ContainsFunc(backends, func(b []string) bool { return slices.Equal(b, r.Sites) }) {
			backends = append(backends, r.Sites)
		}
		for _, e := range emitted {
			if e.rule < i && e.key != keys[0] && strings.HasPrefix(keys[0], e.key) && overlaps(m, e.rule, r.Match) {
				note("%s: prefix %q lies under %q of shard.projects[%d], which comes first and matches some of the same projects; HAProxy prefers the longer prefix, so those go here and are redirected (307)", where, keys[0], e.key, e.rule)
				break
			}
		}
		for _, k := range keys {
			if j, dup := taken[k]; dup {
				note("%s: prefix %q already belongs to shard.projects[%d], which comes first", where, k, j)
				continue
			}
			taken[k] = i
			emitted = append(emitted, keyed{rule: i, key: k})
			fmt.Fprintf(&mp, "%s %s\n", k, backend)
		}
	}
	out.Map = mp.String()

	var c strings.Builder
	fmt.Fprintf(&c, "# sitesync front-end load balancer, generated from %s.\n", opt.Source)
	fmt.Fprintf(&c, "# Merge into your haproxy.cfg; the map is %s.\n\n", opt.MapPath)
	c.WriteString("defaults\n" +
		"    mode http\n" +
		"    timeout connect 5s\n" +
		"    # A clone of a large repository streams for minutes; idle timeouts,\n" +
		"    # not transfer time, should end a connection.\n" +
		"    timeout client 1h\n" +
		"    timeout server 1h\n" +
		"    timeout http-request 30s\n\n")
	c.WriteString("frontend sitesync\n")
	fmt.Fprintf(&c, "    bind %s\n", opt.Bind)
	c.WriteString("    # path is the raw request path (escapes kept), as the map's keys are.\n")
	fmt.Fprintf(&c, "    use_backend %%[path,map_beg(%s,%s)]\n", opt.MapPath, GlobalBackend)
	fmt.Fprintf(&c, "    default_backend %s\n", GlobalBackend)
	c.WriteString("    http-response set-header X-Sitesync-Backend %b\n")
	writeBackend := func(name, comment, balance string, sites []string) {
		fmt.Fprintf(&c, "\nbackend %s\n", name)
		fmt.Fprintf(&c, "    # %s\n", comment)
		if balance != "" {
			fmt.Fprintf(&c, "    %s\n", balance)
		}
		c.WriteString("    option httpchk GET /healthz\n")
		for _, s := range sites {
			fmt.Fprintf(&c, "    server %s %s check\n", s, servers[s])
		}
	}
	// Every request of one git operation (info/refs, then upload-pack or
	// receive-pack) must reach the same site: sites converge by replication,
	// and the second request may name objects only the first site has shown.
	sticky := "balance source"
	writeBackend(GlobalBackend, "global projects: every site holds them", sticky, m.sites)
	for _, b := range backends {
		bal := ""
		if len(b) > 1 {
			bal = sticky
		}
		writeBackend(BackendName(b), "projects placed on "+strings.Join(b, ", "), bal, b)
	}
	out.Config = c.String()
	return out, nil
}

// mapKeys returns the map_beg keys for a rule pattern and whether they match
// exactly the projects the pattern matches. No keys: not expressible.
func mapKeys(pattern string) (keys []string, exact bool) {
	cut := strings.IndexAny(pattern, "*?")
	if cut < 0 {
		// One project: its git paths with and without ".git", and its API path.
		p := escapePath(pattern)
		keys = []string{"/" + p + ".git/", "/" + p + "/info/refs", "/" + p + "/git-upload-pack", "/" + p + "/git-receive-pack"}
		// The API key is also a prefix of longer names (tango%2Fsecretive),
		// said once in the map's header; the git keys are exact.
		return append(keys, apiKeys(pattern)...), true
	}
	lit := pattern[:cut]
	if lit == "" {
		return nil, false
	}
	keys = append([]string{"/" + escapePath(lit)}, apiKeys(lit)...)
	// "L/**" is exactly everything below L, which is exactly the prefix "L/".
	return keys, pattern[cut:] == "**" && strings.HasSuffix(lit, "/")
}

// apiKeys is the API path prefix of a name prefix, with '/' escaped as
// clients do: upper- and lower-case hex.
func apiKeys(lit string) []string {
	up := apiProjects + url.PathEscape(lit)
	if !strings.Contains(lit, "/") {
		return []string{up}
	}
	return []string{up, strings.ReplaceAll(up, "%2F", "%2f")}
}

// escapePath escapes each segment of a name as it appears in a URL path.
func escapePath(name string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// serverAddr turns an http.url into HAProxy's host:port and whether it is TLS.
func serverAddr(raw string) (string, bool, error) {
	if raw == "" {
		return "", false, errors.New("no http.url")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("http.url: %w", err)
	}
	if u.Path != "" && u.Path != "/" {
		return "", false, fmt.Errorf("http.url %q has a path; HAProxy routing needs the front door at the root", raw)
	}
	port := u.Port()
	switch {
	case u.Scheme == "https" && port == "":
		port = "443"
	case u.Scheme == "http" && port == "":
		port = "80"
	case u.Scheme != "http" && u.Scheme != "https":
		return "", false, fmt.Errorf("http.url %q: scheme must be http or https", raw)
	}
	return net.JoinHostPort(u.Hostname(), port), u.Scheme == "https", nil
}

// prefixGlobs returns globs whose union is every project name that starts
// with the literal part of pattern (what its map key matches); nil if that
// cannot be written as a glob.
func prefixGlobs(pattern string) []*glob.Pattern {
	lit := literalPart(pattern)
	var srcs []string
	switch {
	case lit == pattern:
		srcs = []string{pattern}
	case strings.HasSuffix(lit, "/"):
		srcs = []string{lit + "**"}
	default:
		srcs = []string{lit + "*", lit + "*/**"}
	}
	var out []*glob.Pattern
	for _, src := range srcs {
		p, err := glob.Compile(src)
		if err != nil {
			return nil
		}
		out = append(out, p)
	}
	return out
}

// overlaps reports whether some project that rule i places also starts with
// the literal part of pattern (and so may get pattern's longer map key).
// Unknown (patterns too complex) counts as an overlap.
func overlaps(m *Map, i int, pattern string) bool {
	below := prefixGlobs(pattern)
	if below == nil {
		return true
	}
	for _, p := range below {
		_, ok, err := glob.Witness([]*glob.Pattern{m.pats[i], p}, m.pats[:i])
		if ok || err != nil {
			return true
		}
	}
	return false
}

// widerMatters reports whether rule i's map key also matches a project that
// a later rule k places on other sites and that no longer key claims (the
// key sends it to rule i's sites, which redirect it). Global projects under
// the key do not count: every site holds them. It returns k and an example.
func widerMatters(m *Map, i int) (k int, name string, ok bool) {
	below := prefixGlobs(m.rules[i].Match)
	if below == nil {
		return 0, "", false
	}
	lit := literalPart(m.rules[i].Match)
	var longer []*glob.Pattern // names that a longer key takes from this one
	for j, r := range m.rules {
		if l := literalPart(r.Match); j != i && len(l) > len(lit) && strings.HasPrefix(l, lit) {
			longer = append(longer, prefixGlobs(r.Match)...)
		}
	}
	for k := i + 1; k < len(m.rules); k++ {
		if sameSites(m.rules[i].Sites, m.rules[k].Sites) {
			continue
		}
		exclude := append(slices.Clone(m.pats[:k]), longer...)
		for _, p := range below {
			name, ok, err := glob.Witness([]*glob.Pattern{p, m.pats[k]}, exclude)
			if ok || err != nil {
				return k, name, true
			}
		}
	}
	return 0, "", false
}

// literalPart is pattern up to its first wildcard.
func literalPart(pattern string) string {
	if cut := strings.IndexAny(pattern, "*?"); cut >= 0 {
		return pattern[:cut]
	}
	return pattern
}

// sameSites reports whether a and b name the same sites, in any order.
func sameSites(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}
