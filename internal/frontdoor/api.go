package frontdoor

import (
	"cmp"
	"net/http"
	"net/url"
	"strings"
)

const projectsPrefix = "/api/v1/projects/"

// serveAPI routes /api/v1. Project names arrive URL-escaped as one path
// segment (tango%2Fcore), so routing works on the escaped path.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	escaped := r.URL.EscapedPath()
	if escaped == "/api/v1/status" && s.cfg.Status != nil {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "method " + r.Method + " not allowed"})
			return
		}
		writeJSON(w, http.StatusOK, s.cfg.Status(r.Context()))
		return
	}
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
	case tail == "head" && s.cfg.Coord != nil:
		if r.Method != http.MethodPut {
			w.Header().Set("Allow", http.MethodPut)
			writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "method " + r.Method + " not allowed"})
			return
		}
		s.setHead(w, r, name)
	case tail == "refs" && s.cfg.Coord != nil:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "method " + r.Method + " not allowed"})
			return
		}
		s.writeRefs(w, r, name)
	case strings.HasPrefix(tail, "refs/") && s.cfg.Coord != nil:
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "method " + r.Method + " not allowed"})
			return
		}
		// {ref} is a full ref name, its slashes escaped or not.
		ref, err := url.PathUnescape(strings.TrimPrefix(tail, "refs/"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "bad ref escape: " + err.Error()})
			return
		}
		s.readRef(w, r, name, ref)
	default:
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such API endpoint"})
	}
}

// createProject answers PUT /api/v1/projects/{name}: 201 when the bare
// repository was created, 200 when it existed.
func (s *Server) createProject(w http.ResponseWriter, r *http.Request, name string) {
	var req struct {
		Head string `json:"head"`
	}
	if !readOptionalJSON(w, r, &req) {
		return
	}
	var created bool
	var pending []string
	var err error
	if s.cfg.Coord != nil {
		created, pending, err = s.cfg.Coord.CreateProject(r.Context(), name, req.Head)
	} else {
		created, err = s.cfg.Repos.Root().CreateWithHead(r.Context(), name, cmp.Or(req.Head, s.cfg.DefaultHead))
	}
	if err != nil {
		writeWriteError(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	body := map[string]any{"project": name, "created": created, "site": s.cfg.Site}
	if len(pending) > 0 {
		// Those sites create it when the project's first write reaches them.
		body["pending"] = pending
	}
	writeJSON(w, status, body)
}
