package frontdoor

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/coord"
)

// refsCoord is a Coordinator that answers WaitRef with value and records
// what it was asked; its Write, CreateProject and SetHead record that they
// were called. Its other methods are not called.
type refsCoord struct {
	Coordinator
	value string
	read  []string
	calls []string
}

func (f *refsCoord) WaitRef(_ context.Context, _, ref, _ string) (string, error) {
	f.read = append(f.read, ref)
	return f.value, nil
}

func (f *refsCoord) Write(context.Context, string, []coord.Update) (coord.Result, error) {
	f.calls = append(f.calls, "write")
	return coord.Result{Txn: "t"}, nil
}

func (f *refsCoord) CreateProject(context.Context, string, string) (bool, []string, error) {
	f.calls = append(f.calls, "create")
	return true, nil, nil
}

func (f *refsCoord) SetHead(context.Context, string, string) (coord.Result, error) {
	f.calls = append(f.calls, "head")
	return coord.Result{Txn: "t"}, nil
}

// TestReadRefOnlyRefs: GET .../refs/{ref} reads a full ref name under
// refs/; a revision, a short name, HEAD or a path is refused with 400
// naming the ref and what is wrong, and never reaches the coordinator.
func TestReadRefOnlyRefs(t *testing.T) {
	value := strings.Repeat("1", 40)
	for _, tc := range []struct {
		name    string
		escaped string // {ref} in the path
		status  int
		read    string // the ref the coordinator is asked for
		body    string // in the answer
	}{
		{name: "full ref, escaped", escaped: "refs%2Fheads%2Fmain", status: http.StatusOK, read: "refs/heads/main", body: value},
		{name: "full ref, slashes as they are", escaped: "refs/heads/main", status: http.StatusOK, read: "refs/heads/main", body: value},
		{name: "change ref", escaped: "refs/changes/01/1/meta", status: http.StatusOK, read: "refs/changes/01/1/meta", body: value},
		{name: "ancestry", escaped: "main~2", status: http.StatusBadRequest, body: `ref \"main~2\" is not a full ref name under refs/`},
		{name: "ancestry of a full name", escaped: "refs%2Fheads%2Fmain~2", status: http.StatusBadRequest, body: `ref \"refs/heads/main~2\" contains`},
		{name: "path in a tree", escaped: "main:f1", status: http.StatusBadRequest, body: `\"main:f1\" is not a full ref name`},
		{name: "message search", escaped: ":%2Fregex", status: http.StatusBadRequest, body: `\":/regex\" is not a full ref name`},
		{name: "peel", escaped: "refs%2Fheads%2Fmain%5E%7Btree%7D", status: http.StatusBadRequest, body: `ref \"refs/heads/main^{tree}\"`},
		{name: "reflog", escaped: "refs%2Fheads%2Fmain%40%7B1%7D", status: http.StatusBadRequest, body: `contains '..', '//' or '@{'`},
		{name: "path escape", escaped: "..%2F..%2F..%2F..%2Fetc%2Fpasswd", status: http.StatusBadRequest, body: `\"../../../../etc/passwd\" is not a full ref name`},
		{name: "path escape under refs", escaped: "refs%2F..%2F..%2Fconfig", status: http.StatusBadRequest, body: `contains '..'`},
		{name: "HEAD", escaped: "HEAD", status: http.StatusBadRequest, body: `\"HEAD\" is not a full ref name under refs/`},
		{name: "short name", escaped: "main", status: http.StatusBadRequest, body: "is not a full ref name"},
		{name: "lock file", escaped: "refs%2Fheads%2Fx.lock", status: http.StatusBadRequest, body: "'.lock'"},
		{name: "space", escaped: "refs%2Fheads%2Fa%20b", status: http.StatusBadRequest, body: "contains a control character"},
		{name: "newline", escaped: "refs%2Fheads%2Fa%0Ainfo%20HEAD", status: http.StatusBadRequest, body: "contains a control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &refsCoord{value: value}
			srv := httptest.NewServer(New(Config{Site: "a", Coord: f}))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/api/v1/projects/p/refs/" + tc.escaped)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode, "%s", b)
			require.True(t, json.Valid(b), "%s", b)
			require.Contains(t, string(b), tc.body)
			if tc.read == "" {
				require.Empty(t, f.read, "a refused name reaches the coordinator")
				return
			}
			require.Equal(t, []string{tc.read}, f.read)
			require.JSONEq(t, `{"ref":"`+tc.read+`","value":"`+value+`"}`, string(b))
		})
	}
}

// endless is a body of n spaces (valid JSON whitespace, so only its size
// is wrong), produced as it is read, its length not known in advance.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), e.n)
	for i := range k {
		p[i] = ' '
	}
	e.n -= k
	return int(k), nil
}

// TestBodyLimits: a body over the limit of its request is answered 413
// naming the limit, whether its length is announced or not, and nothing
// is written; bodies within the limit are decoded as before.
func TestBodyLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		body    func() io.Reader
		length  int64 // Content-Length; -1: chunked
		status  int
		message string
	}{
		{name: "write of 100 MiB", method: http.MethodPost, path: "/api/v1/projects/p/refs",
			body: func() io.Reader { return &endless{n: 100 << 20} }, length: 100 << 20,
			status: http.StatusRequestEntityTooLarge, message: "request body larger than the limit of 16 MiB"},
		{name: "write of 17 MiB, chunked", method: http.MethodPost, path: "/api/v1/projects/p/refs",
			body: func() io.Reader { return &endless{n: 17 << 20} }, length: -1,
			status: http.StatusRequestEntityTooLarge, message: "request body larger than the limit of 16 MiB"},
		{name: "malformed write", method: http.MethodPost, path: "/api/v1/projects/p/refs",
			body: func() io.Reader { return strings.NewReader(`{"updates":`) }, length: -1,
			status: http.StatusBadRequest, message: "malformed request body: unexpected EOF"},
		{name: "empty write", method: http.MethodPost, path: "/api/v1/projects/p/refs",
			body: func() io.Reader { return strings.NewReader("") }, length: 0,
			status: http.StatusBadRequest, message: "malformed request body: EOF"},
		{name: "write within the limit", method: http.MethodPost, path: "/api/v1/projects/p/refs",
			body: func() io.Reader { return strings.NewReader(`{"updates":[]}` + strings.Repeat(" ", 1<<20)) }, length: -1,
			status: http.StatusOK},
		{name: "project of 1 MiB", method: http.MethodPut, path: "/api/v1/projects/p",
			body: func() io.Reader { return &endless{n: 1 << 20} }, length: 1 << 20,
			status: http.StatusRequestEntityTooLarge, message: "request body larger than the limit of 64 KiB"},
		{name: "project of 65 KiB, chunked", method: http.MethodPut, path: "/api/v1/projects/p",
			body: func() io.Reader { return &endless{n: 65 << 10} }, length: -1,
			status: http.StatusRequestEntityTooLarge, message: "request body larger than the limit of 64 KiB"},
		{name: "project without a body", method: http.MethodPut, path: "/api/v1/projects/p",
			body: func() io.Reader { return strings.NewReader("") }, length: 0,
			status: http.StatusCreated},
		{name: "head of 65 KiB, chunked", method: http.MethodPut, path: "/api/v1/projects/p/head",
			body: func() io.Reader { return &endless{n: 65 << 10} }, length: -1,
			status: http.StatusRequestEntityTooLarge, message: "request body larger than the limit of 64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &refsCoord{}
			srv := httptest.NewServer(New(Config{Site: "a", Coord: f}))
			defer srv.Close()
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, tc.body())
			require.NoError(t, err)
			req.ContentLength = tc.length
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode, "%s", b)
			require.True(t, json.Valid(b), "%s", b)
			if tc.message != "" {
				var body struct{ Error string }
				require.NoError(t, json.Unmarshal(b, &body))
				require.Equal(t, tc.message, body.Error)
			}
			if tc.status >= 400 {
				require.Empty(t, f.calls, "a refused body reaches the coordinator")
			}
		})
	}
}
