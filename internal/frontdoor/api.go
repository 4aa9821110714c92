package frontdoor

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

const projectsPrefix = "/api/v1/projects/"

// serveAPI routes /api/v1. Project names arrive URL-escaped as one path
// segment (tango%2Fcore) or with their slashes as they are (tango/core):
// splitProject tells the name from what follows it.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	escaped := r.URL.EscapedPath()
	if escaped == "/api/v1/status" && s.cfg.Status != nil {
		if !allow(w, r, http.MethodGet) {
			return
		}
		writeJSON(w, http.StatusOK, s.cfg.Status(r.Context()))
		return
	}
	if escaped == strings.TrimSuffix(projectsPrefix, "/") || escaped == projectsPrefix {
		if allow(w, r, http.MethodGet) {
			s.listProjects(w, r)
		}
		return
	}
	if !strings.HasPrefix(escaped, projectsPrefix) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such API endpoint"})
		return
	}
	rest := strings.TrimPrefix(escaped, projectsPrefix)
	name, tail, err := splitProject(rest)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	info.project = name
	if s.redirect(w, r, name) {
		return
	}
	switch {
	case tail == "" && !strings.HasSuffix(rest, "/"):
		switch {
		case r.Method == http.MethodGet:
			s.getProject(w, r, name)
		case r.Method == http.MethodDelete && s.cfg.Coord != nil:
			s.deleteProject(w, r, name)
		case allow(w, r, http.MethodPut, http.MethodGet, http.MethodDelete):
			s.createProject(w, r, name)
		}
	case tail == "head" && s.cfg.Coord != nil:
		if !allow(w, r, http.MethodPut) {
			return
		}
		s.setHead(w, r, name)
	case tail == "import" && s.cfg.Coord != nil:
		s.importProject(w, r, name)
	case tail == "refs" && s.cfg.Coord != nil:
		if !allow(w, r, http.MethodPost) {
			return
		}
		s.writeRefs(w, r, name)
	case strings.HasPrefix(tail, "refs/") && s.cfg.Coord != nil:
		if !allow(w, r, http.MethodGet) {
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

// projectTails are the path segments that end a project name in an API
// path: /api/v1/projects/{name}/{tail}. A project with a component of
// these names must be given escaped (a%2Frefs%2Fb).
var projectTails = []string{"refs", "head", "checksum", "import", "events"}

// splitProject splits what follows /api/v1/projects/ in an escaped path
// into the project name (unescaped) and the rest: the name runs up to the
// first segment after its first that is one of projectTails.
func splitProject(rest string) (name, tail string, err error) {
	segs := strings.Split(rest, "/")
	end := len(segs)
	for i := 1; i < len(segs); i++ {
		if slices.Contains(projectTails, segs[i]) {
			end = i
			break
		}
	}
	escaped := strings.Join(segs[:end], "/")
	tail = strings.Join(segs[end:], "/")
	if end == len(segs) && strings.HasSuffix(rest, "/") {
		escaped = strings.TrimSuffix(escaped, "/") // "name/": no such endpoint, as before
	}
	name, err = url.PathUnescape(escaped)
	if err != nil {
		return "", "", fmt.Errorf("bad project name escape: %v", err)
	}
	return name, tail, nil
}

// allow reports whether r's method is the first of methods; if not, it
// answers 405 naming all of them.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if r.Method == methods[0] {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "method " + r.Method + " not allowed"})
	return false
}
