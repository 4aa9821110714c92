package frontdoor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sitesync/sitesync/internal/coord"
	"github.com/sitesync/sitesync/internal/git"
)

// maxWriteBody bounds the body of POST .../refs: a batch of ~100k updates.
const maxWriteBody = 16 << 20

// Read-your-writes waits: the default when ?timeout= is absent, and the cap.
const (
	defaultWaitTimeout = 10 * time.Second
	maxWaitTimeout     = 5 * time.Minute
)

type writeRequest struct {
	Updates []coord.Update `json:"updates"`
}

type writeResponse struct {
	Txn      string          `json:"txn"`
	Acks     []string        `json:"acks"`
	Versions []coord.Version `json:"versions,omitempty"`
}

type conflictBody struct {
	Error string        `json:"error"`
	Refs  []conflictRef `json:"refs"`
}

type conflictRef struct {
	Ref      string `json:"ref"`
	Expected string `json:"expected"`
	Current  string `json:"current"`
	Site     string `json:"site,omitempty"`
	Version  uint64 `json:"version"`
}

// writeRefs answers POST /api/v1/projects/{name}/refs, the local write API.
func (s *Server) writeRefs(w http.ResponseWriter, r *http.Request, name string) {
	var req writeRequest
	if !decodeBody(w, r, &req, maxWriteBody, false) {
		return
	}
	res, err := s.cfg.Coord.Write(r.Context(), name, req.Updates)
	if err != nil {
		writeWriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, writeResponse{Txn: res.Txn, Acks: res.Acks, Versions: res.Versions})
}

// writeWriteError answers a write that failed with err: 409 naming the
// refs that moved, 503 when the ack rule or the refdb failed, 400 for a
// write that is wrong.
func writeWriteError(w http.ResponseWriter, err error) {
	var conflict *coord.ConflictError
	switch {
	case errors.As(err, &conflict):
		body := conflictBody{Error: err.Error()}
		for _, c := range conflict.Refs {
			body.Refs = append(body.Refs, conflictRef{Ref: c.Ref, Expected: c.Want, Current: c.Current.Value, Site: c.Current.Site, Version: c.Current.Version})
		}
		writeJSON(w, http.StatusConflict, body)
	case errors.Is(err, coord.ErrNoQuorum), errors.Is(err, coord.ErrUnavailable):
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
	case errors.Is(err, coord.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
	default:
		writeJSON(w, statusOf(err), apiError{Error: err.Error()})
	}
}

type refBody struct {
	Ref   string `json:"ref"`
	Value string `json:"value"`
}

// readRef answers GET /api/v1/projects/{name}/refs/{ref}?until=SHA&timeout=D:
// the ref's value at this site, once it equals until if that is given. ref
// is a full ref name under refs/ (coord.CheckReadRef), read as a ref, never
// evaluated as a revision: anything else is refused with 400. A ref that
// does not exist has the zero id.
func (s *Server) readRef(w http.ResponseWriter, r *http.Request, name, ref string) {
	if err := coord.CheckReadRef(ref); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	q := r.URL.Query()
	until := q.Get("until")
	if until != "" && !git.IsID(until) {
		writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("until=%q is not a 40-character object name", until)})
		return
	}
	timeout := defaultWaitTimeout
	if t := q.Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d < 0 || d > maxWaitTimeout {
			writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("timeout=%q: want a duration between 0s and %s", t, maxWaitTimeout)})
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	value, err := s.cfg.Coord.WaitRef(ctx, name, ref, until)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, refBody{Ref: ref, Value: value})
	case errors.Is(err, context.DeadlineExceeded) && value != "":
		writeJSON(w, http.StatusGatewayTimeout, map[string]string{"ref": ref, "value": value, "error": fmt.Sprintf("%s is still %s at site %s after %s", ref, value, s.cfg.Site, timeout)})
	case errors.Is(err, coord.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
	default:
		writeJSON(w, statusOf(err), apiError{Error: err.Error()})
	}
}
