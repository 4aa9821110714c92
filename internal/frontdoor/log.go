package frontdoor

import (
	"io"
	"log/slog"
	"net/http"
	"time"
)

// requestInfo is what a handler learns about a request for its log line.
type requestInfo struct {
	project string
	service string
}

// loggedWriter records the status and the bytes of a response.
type loggedWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *loggedWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *loggedWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer to flush.
func (w *loggedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingReader counts the bytes of a request body.
type countingReader struct {
	r     io.ReadCloser
	bytes int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.bytes += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

// logRequest returns the function that writes the request's one log line.
func (s *Server) logRequest(r *http.Request, w *loggedWriter, in *countingReader, info *requestInfo) func() {
	start := time.Now()
	return func() {
		status := w.status
		if status == 0 {
			status = http.StatusOK
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		s.log.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("project", info.project),
			slog.String("service", info.service),
			slog.Int("status", status),
			slog.Int64("bytes_in", in.bytes),
			slog.Int64("bytes_out", w.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		)
	}
}
