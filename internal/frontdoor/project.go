package frontdoor

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// maxProjectBody bounds the body of a project request: a few fields.
const maxProjectBody = 64 << 10

// readOptionalJSON decodes r's body into v when it has one; an empty body
// leaves v as it is. On a malformed body it answers 400 and returns false.
func readOptionalJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxProjectBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "malformed request body: " + err.Error()})
		return false
	}
	return true
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
