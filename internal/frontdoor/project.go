package frontdoor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/sitesync/sitesync/internal/coord"
	"github.com/sitesync/sitesync/internal/git"
)

// maxProjectBody bounds the body of a project request: a few fields.
const maxProjectBody = 64 << 10

// readOptionalJSON decodes r's body into v when it has one; an empty body
// leaves v as it is. On a malformed body it answers 400, on one larger
// than maxProjectBody 413, and returns false.
func readOptionalJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeBody(w, r, v, maxProjectBody, true)
}

// decodeBody decodes r's JSON body, at most limit bytes, into v; an empty
// body is an error unless optional (v is left as it is). On failure it
// answers — 413 naming the limit for a body larger than limit, 400 for a
// malformed one — and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, limit int64, optional bool) bool {
	if r.ContentLength > limit {
		writeTooLarge(w, limit)
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil, optional && errors.Is(err, io.EOF):
		return true
	case errors.As(err, &tooLarge):
		writeTooLarge(w, limit)
	default:
		writeJSON(w, http.StatusBadRequest, apiError{Error: "malformed request body: " + err.Error()})
	}
	return false
}

// writeTooLarge answers 413 for a body over limit bytes.
func writeTooLarge(w http.ResponseWriter, limit int64) {
	size := fmt.Sprintf("%d bytes", limit)
	switch {
	case limit >= 1<<20 && limit%(1<<20) == 0:
		size = fmt.Sprintf("%d MiB", limit>>20)
	case limit >= 1<<10 && limit%(1<<10) == 0:
		size = fmt.Sprintf("%d KiB", limit>>10)
	}
	writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: "request body larger than the limit of " + size})
}

// setHead answers PUT /api/v1/projects/{name}/head {"ref":REF}: HEAD points
// at the branch REF at every placement site, under the project's ack rule.
func (s *Server) setHead(w http.ResponseWriter, r *http.Request, name string) {
	var req struct {
		Ref string `json:"ref"`
	}
	if !readOptionalJSON(w, r, &req) {
		return
	}
	if req.Ref == "" {
		writeJSON(w, http.StatusBadRequest, apiError{Error: `body must be {"ref":"refs/heads/..."}`})
		return
	}
	res, err := s.cfg.Coord.SetHead(r.Context(), name, req.Ref)
	if err != nil {
		writeWriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": name, "head": req.Ref, "txn": res.Txn, "acks": res.Acks})
}

// listProjects answers GET /api/v1/projects: the projects held at this
// site, each with its placement and HEAD.
func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) {
	var infos []coord.ProjectInfo
	if s.cfg.Coord != nil {
		var err error
		if infos, err = s.cfg.Coord.Projects(); err != nil {
			writeJSON(w, statusOf(err), apiError{Error: err.Error()})
			return
		}
	} else {
		names, err := s.cfg.Repos.Root().List()
		if err != nil {
			writeJSON(w, statusOf(err), apiError{Error: err.Error()})
			return
		}
		for _, n := range names {
			if info, err := s.localProject(n); err == nil {
				infos = append(infos, info)
			}
		}
	}
	if infos == nil {
		infos = []coord.ProjectInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"site": s.cfg.Site, "projects": infos})
}

// getProject answers GET /api/v1/projects/{name}: 404 if it is not held
// here.
func (s *Server) getProject(w http.ResponseWriter, _ *http.Request, name string) {
	var info coord.ProjectInfo
	var err error
	if s.cfg.Coord != nil {
		info, err = s.cfg.Coord.Project(name)
	} else {
		info, err = s.localProject(name)
	}
	if err != nil {
		writeJSON(w, statusOf(err), apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// localProject describes a project of a front door without a coordinator.
func (s *Server) localProject(name string) (coord.ProjectInfo, error) {
	dir, err := s.cfg.Repos.Root().Existing(name)
	if err != nil {
		return coord.ProjectInfo{}, err
	}
	head, err := git.ReadHead(dir)
	if err != nil {
		return coord.ProjectInfo{}, err
	}
	return coord.ProjectInfo{Name: name, Placement: []string{s.cfg.Site}, Head: head}, nil
}

// deleteProject answers DELETE /api/v1/projects/{name}: the project is
// deleted at every placement site; 409 while writes are in flight here.
func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request, name string) {
	pending, err := s.cfg.Coord.DeleteProject(r.Context(), name)
	switch {
	case errors.Is(err, coord.ErrBusy):
		writeJSON(w, http.StatusConflict, apiError{Error: err.Error()})
	case err != nil:
		writeWriteError(w, err)
	default:
		body := map[string]any{"project": name, "deleted": true, "site": s.cfg.Site}
		if len(pending) > 0 {
			// Those sites remove it when they next catch up with the refdb.
			body["pending"] = pending
		}
		writeJSON(w, http.StatusOK, body)
	}
}
