package frontdoor

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sitesync/sitesync/internal/coord"
	"github.com/sitesync/sitesync/internal/git"
)

// Config is what the front door needs to know about its site.
type Config struct {
	Site  string       // this site's name, shown in messages to users
	Repos *git.Repos   // the repository store
	Ready func() error // nil error when the site takes writes; nil func: always ready
	Extra http.Handler // optional: serves /metrics and anything else not routed here
	Log   *slog.Logger // request log
	// Route says where a project lives: redirect is true, with the base URL
	// of a site that holds it, when this site does not. nil: every project
	// is served here.
	Route func(project string) (base string, redirect bool)
	// Coord replicates writes; nil serves the repositories locally only.
	Coord Coordinator
	// DefaultHead is the branch HEAD of a project created without Coord
	// points at; "": git's default.
	DefaultHead string
	// Status answers GET /api/v1/status; nil: 404.
	Status func(ctx context.Context) any
}

// Coordinator is what the front door asks of the replication coordinator.
type Coordinator interface {
	BeginPush(ctx context.Context, project string, body io.Reader) (*coord.Push, error)
	Write(ctx context.Context, project string, ups []coord.Update) (coord.Result, error)
	WaitRef(ctx context.Context, project, ref, want string) (string, error)
	CreateProject(ctx context.Context, project, head string) (created bool, pending []string, err error)
	SetHead(ctx context.Context, project, ref string) (coord.Result, error)
	Projects() ([]coord.ProjectInfo, error)
	Project(name string) (coord.ProjectInfo, error)
	DeleteProject(ctx context.Context, project string) (pending []string, err error)
	Import(ctx context.Context, project string) (coord.ImportResult, error)
}

// Server routes the site's HTTP requests.
type Server struct {
	cfg Config
	log *slog.Logger
}

// New returns a front door for cfg.
func New(cfg Config) *Server {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log.With("component", "frontdoor")}
}

// ServeHTTP logs the request and hands it to the git protocol, the API or the
// health endpoints. The mux of net/http is not used for git paths: it would
// redirect unclean paths instead of refusing them, and project names contain
// '/'.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	lw := &loggedWriter{ResponseWriter: w}
	info := &requestInfo{}
	counted := &countingReader{r: r.Body}
	r.Body = counted
	defer s.logRequest(r, lw, counted, info)()

	p := r.URL.Path
	switch {
	case p == "/healthz":
		writeText(lw, http.StatusOK, "ok\n")
	case p == "/readyz":
		s.readyz(lw)
	case strings.HasPrefix(p, "/api/"):
		s.serveAPI(lw, r, info)
	case isGitPath(p):
		s.serveGit(lw, r, info)
	case s.cfg.Extra != nil:
		s.cfg.Extra.ServeHTTP(lw, r)
	default:
		writeText(lw, http.StatusNotFound, "sitesync: not found\n")
	}
}

func (s *Server) readyz(w http.ResponseWriter) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
			return
		}
	}
	writeText(w, http.StatusOK, "ready\n")
}

// statusOf maps an error from internal/git to the HTTP status a client gets.
func statusOf(err error) int {
	switch {
	case errors.Is(err, git.ErrBadName):
		return http.StatusBadRequest
	case errors.Is(err, git.ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// writeText answers with a plain-text message. Git clients show text/plain
// bodies of failed requests to the user as "remote:" lines.
func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError is the body of every failed API request.
type apiError struct {
	Error string `json:"error"`
}
