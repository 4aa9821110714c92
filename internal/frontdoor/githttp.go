package frontdoor

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sitesync/sitesync/internal/coord"
	"github.com/sitesync/sitesync/internal/git"
)

// The paths of the git smart-HTTP protocol, after the repository's path.
const (
	infoRefs        = "/info/refs"
	uploadPackPath  = "/git-upload-pack"
	receivePackPath = "/git-receive-pack"
)

func isGitPath(p string) bool {
	return strings.HasSuffix(p, infoRefs) || strings.HasSuffix(p, uploadPackPath) || strings.HasSuffix(p, receivePackPath) ||
		strings.Contains(p, ".git/")
}

// gitRequest is a parsed smart-HTTP request.
type gitRequest struct {
	project   string
	service   git.Service
	advertise bool
}

// parseGitPath splits "/tango/core.git/info/refs?service=git-upload-pack"
// into its project and service. The ".git" suffix is optional, as with other
// git servers.
func parseGitPath(r *http.Request) (gitRequest, int, error) {
	p := r.URL.Path
	var req gitRequest
	var wantMethod string
	switch {
	case strings.HasSuffix(p, infoRefs):
		p = strings.TrimSuffix(p, infoRefs)
		name := r.URL.Query().Get("service")
		if name == "" {
			return req, http.StatusForbidden, errors.New("the dumb HTTP protocol is not supported; use a git client of 1.6.6 or later")
		}
		svc, err := git.ParseService(name)
		if err != nil {
			return req, http.StatusForbidden, err
		}
		req.service, req.advertise, wantMethod = svc, true, http.MethodGet
	case strings.HasSuffix(p, uploadPackPath):
		p = strings.TrimSuffix(p, uploadPackPath)
		req.service, wantMethod = git.UploadPack, http.MethodPost
	case strings.HasSuffix(p, receivePackPath):
		p = strings.TrimSuffix(p, receivePackPath)
		req.service, wantMethod = git.ReceivePack, http.MethodPost
	default:
		return req, http.StatusNotFound, errors.New("the dumb HTTP protocol is not supported")
	}
	if r.Method != wantMethod {
		return req, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed here", r.Method)
	}
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimSuffix(p, ".git")
	if err := git.ValidateName(p); err != nil {
		return req, http.StatusBadRequest, err
	}
	req.project = p
	return req, 0, nil
}

func (s *Server) serveGit(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	req, status, err := parseGitPath(r)
	if err != nil {
		writeText(w, status, "sitesync: "+err.Error()+"\n")
		return
	}
	info.project, info.service = req.project, string(req.service)
	if s.redirect(w, r, req.project) {
		return
	}
	repo, err := s.cfg.Repos.Open(req.project)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, git.ErrNotFound) {
			msg = fmt.Sprintf("repository %q not found at site %s", req.project, s.cfg.Site)
		}
		writeText(w, statusOf(err), "sitesync: "+msg+"\n")
		return
	}
	protocol := r.Header.Get("Git-Protocol")
	h := w.Header()
	h.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	h.Set("Expires", "Fri, 01 Jan 1980 00:00:00 GMT")
	h.Set("Pragma", "no-cache")

	if req.advertise {
		h.Set("Content-Type", fmt.Sprintf("application/x-git-%s-advertisement", req.service))
		w.WriteHeader(http.StatusOK)
		// Protocol v2 starts with the capability advertisement itself; v0
		// starts with the service line, as git http-backend does.
		if !strings.Contains(protocol, "version=2") {
			_, _ = io.WriteString(w, pktLine(fmt.Sprintf("# service=git-%s\n", req.service))+"0000")
		}
		s.runService(w, r, git.ServiceRequest{Dir: repo.Dir, Service: req.service, Advertise: true, Protocol: protocol})
		return
	}

	if ct := r.Header.Get("Content-Type"); ct != fmt.Sprintf("application/x-git-%s-request", req.service) {
		writeText(w, http.StatusUnsupportedMediaType, fmt.Sprintf("sitesync: unexpected content type %q\n", ct))
		return
	}
	body := io.Reader(r.Body)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			writeText(w, http.StatusBadRequest, "sitesync: bad gzip request body: "+err.Error()+"\n")
			return
		}
		defer zr.Close()
		body = zr
	default:
		writeText(w, http.StatusUnsupportedMediaType, fmt.Sprintf("sitesync: unsupported content encoding %q\n", enc))
		return
	}
	sreq := git.ServiceRequest{Dir: repo.Dir, Service: req.service, Protocol: protocol, Stdin: body}
	var push *coord.Push
	if req.service == git.ReceivePack && s.cfg.Coord != nil {
		push, err = s.cfg.Coord.BeginPush(r.Context(), req.project, body)
		if err != nil {
			writeText(w, statusOf(err), "sitesync: "+err.Error()+"\n")
			return
		}
		defer push.Finish()
		sreq.Env, sreq.Stdin = push.Env, push.Body
		r = r.WithContext(push.Context(r.Context()))
	}
	h.Set("Content-Type", fmt.Sprintf("application/x-git-%s-result", req.service))
	w.WriteHeader(http.StatusOK)
	written := s.runService(w, r, sreq)
	if push != nil && written == 0 {
		// git dies without a word when sitesync's reference-transaction
		// hook refuses the push (or is stopped: its outcome unknown);
		// answer in its place, so the user reads why.
		if report, ok := push.Rejection(); ok {
			_, _ = w.Write(report)
		}
	}
}

// runService streams one service exchange into the response. The status
// line has been sent already, so a failure can only be logged; the client
// sees the connection end early and reports it.
// It returns how many bytes of response git wrote.
func (s *Server) runService(w http.ResponseWriter, r *http.Request, req git.ServiceRequest) int64 {
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	req.Stdout = fw
	if err := git.RunService(r.Context(), req); err != nil {
		s.log.Warn("git service failed", "service", string(req.Service), "dir", req.Dir, "error", err)
	}
	return fw.n
}

// flushWriter pushes each chunk git writes to the client at once: a client
// waiting on progress or on the end of the advertisement must not wait for a
// buffer to fill.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
	n  int64 // bytes written
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.n += int64(n)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// pktLine frames s as one pkt-line.
func pktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }
