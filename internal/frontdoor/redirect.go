package frontdoor

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/sitesync/sitesync/internal/git"
)

// redirect answers a request for a project that this site does not hold
// (Config.Route says so) with 307 Temporary Redirect to the same path and
// query at the holding site's base URL, and reports whether it answered.
// It runs before anything opens or creates a repository, so this site keeps
// nothing for the project. 307, unlike 302, keeps the method and body: a
// client that follows it with a POST (push) sends the POST again. Git follows
// a redirect of its first request (info/refs) and sends the rest of the
// operation to the new base. Names that are not valid project names are not
// routed; the caller refuses them as usual.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, project string) bool {
	if s.cfg.Route == nil || git.ValidateName(project) != nil {
		return false
	}
	base, ok := s.cfg.Route(project)
	if !ok {
		return false
	}
	if base == "" {
		writeText(w, http.StatusServiceUnavailable, fmt.Sprintf("sitesync: project %q is not held at site %s, and no site that holds it is known\n", project, s.cfg.Site))
		return true
	}
	target := strings.TrimSuffix(base, "/") + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", target)
	writeText(w, http.StatusTemporaryRedirect, fmt.Sprintf("sitesync: project %q is not held at site %s; it is served at %s\n", project, s.cfg.Site, base))
	return true
}
