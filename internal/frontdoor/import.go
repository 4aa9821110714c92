package frontdoor

import (
	"errors"
	"net/http"

	"github.com/sitesync/sitesync/internal/coord"
)

// importBody is the answer of a done import.
type importBody struct {
	Project string `json:"project"`
	Site    string `json:"site"`   // the importing site
	Refs    int    `json:"refs"`   // refs imported: the repository's refs the refdb guards
	Seeded  int    `json:"seeded"` // of them, created in the refdb by this import (it held the rest)
	// Found is, per placement peer, what it held before: none, empty,
	// identical or partial.
	Found map[string]string `json:"found"`
	// Peers is, per placement peer, where its copy is: copied, copying
	// (still, at the peer), or "pending: " and why.
	Peers map[string]string `json:"peers"`
}

// importConflictBody is the answer of an import refused because another
// copy differs.
type importConflictBody struct {
	Error     string           `json:"error"`
	Conflicts []importConflict `json:"conflicts,omitempty"`
}

type importConflict struct {
	Site     string          `json:"site"` // the site whose copy differs; "" for the refdb
	Differ   int             `json:"differ"`
	Extra    int             `json:"extra"`
	Missing  int             `json:"missing"`
	Examples []coord.RefDiff `json:"examples"`
}

// importProject answers POST /api/v1/projects/{name}/import: make the
// repository at this site a replicated project (coord.Import). 200 with
// what was done; 404 when there is no repository here; 409 when another
// copy (a placement site's, the refdb's) differs or the repository cannot
// be imported, nothing changed; 503 when the refdb or a placement site
// cannot be reached.
func (s *Server) importProject(w http.ResponseWriter, r *http.Request, name string) {
	if !allowPost(w, r) {
		return
	}
	res, err := s.cfg.Coord.Import(r.Context(), name)
	var conflict *coord.ImportConflictError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, importBody{Project: res.Project, Site: s.cfg.Site, Refs: res.Refs, Seeded: res.Seeded, Found: res.Found, Peers: res.Peers})
	case errors.As(err, &conflict):
		body := importConflictBody{Error: err.Error()}
		for _, e := range unjoin(err) {
			if errors.As(e, &conflict) {
				d := conflict.Diff
				body.Conflicts = append(body.Conflicts, importConflict{Site: conflict.Other, Differ: d.Differ, Extra: d.Extra, Missing: d.Missing, Examples: d.Examples})
			}
		}
		writeJSON(w, http.StatusConflict, body)
	case errors.Is(err, coord.ErrImportRefused):
		writeJSON(w, http.StatusConflict, apiError{Error: err.Error()})
	case errors.Is(err, coord.ErrUnavailable), errors.Is(err, coord.ErrPeerUnreachable):
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
	default:
		writeJSON(w, statusOf(err), apiError{Error: err.Error()})
	}
}

// allowPost answers 405 to anything but POST.
func allowPost(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodPost {
		return true
	}
	w.Header().Set("Allow", http.MethodPost)
	writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "method " + r.Method + " not allowed"})
	return false
}

// unjoin is the errors an errors.Join made, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
