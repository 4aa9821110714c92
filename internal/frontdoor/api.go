package frontdoor

import (
	"net/http"
	"net/url"
	"strings"
)

const projectsPrefix = "/api/v1/projects/"

// serveAPI routes /api/v1. Project names arrive URL-escaped as one path
// segment (tango%2Fcore), so routing works on the escaped path.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	escaped := r.URL.EscapedPath()
	if !strings.HasPrefix(escaped, projectsPrefix) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such API endpoint"})
		return
	}
	rest := strings.TrimPrefix(escaped, projectsPrefix)
	segment, tail, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(segment)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "bad project name escape: " + err.Error()})
		return
	}
	info.project = name
	if s.redirect(w, r, name) {
		return
	}
	switch {
	case tail == "" && !strings.HasSuffix(rest, "/"):
		if r.Method != http.MethodPut {
			w.Header().Set("Allow", http.MethodPut)
			writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "method " + r.Method + " not allowed"})
			return
		}
		s.createProject(w, r, name)
	default:
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such API endpoint"})
	}
}

// createProject answers PUT /api/v1/projects/{name}: 201 when the bare
// repository was created, 200 when it existed.
func (s *Server) createProject(w http.ResponseWriter, r *http.Request, name string) {
	created, err := s.cfg.Repos.Root().Create(r.Context(), name)
	if err != nil {
		writeJSON(w, statusOf(err), apiError{Error: err.Error()})
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{"project": name, "created": created, "site": s.cfg.Site})
}
