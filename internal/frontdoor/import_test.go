package frontdoor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/coord"
	"github.com/sitesync/sitesync/internal/git"
)

// importer is a Coordinator whose Import answers res, err; its other
// methods are not called.
type importer struct {
	Coordinator
	res  coord.ImportResult
	err  error
	seen []string
}

func (f *importer) Import(_ context.Context, project string) (coord.ImportResult, error) {
	f.seen = append(f.seen, project)
	return f.res, f.err
}

func TestImportAPI(t *testing.T) {
	conflict := &coord.ImportConflictError{Project: "tango/core", Site: "a", Other: "b",
		Diff: coord.Difference{Differ: 1, Examples: []coord.RefDiff{{Ref: "refs/heads/main", Want: strings.Repeat("1", 40), Got: strings.Repeat("2", 40)}}}}
	for _, tc := range []struct {
		name   string
		method string
		res    coord.ImportResult
		err    error
		status int
		body   string
	}{
		{name: "imported", method: http.MethodPost,
			res:    coord.ImportResult{Project: "tango/core", Refs: 3, Seeded: 2, Found: map[string]string{"b": "none"}, Peers: map[string]string{"b": "copied"}},
			status: http.StatusOK, body: `{"project":"tango/core","site":"a","refs":3,"seeded":2,"found":{"b":"none"},"peers":{"b":"copied"}}`},
		{name: "no repository", method: http.MethodPost, err: fmt.Errorf("open: %w", git.ErrNotFound), status: http.StatusNotFound},
		{name: "a different copy", method: http.MethodPost, err: errors.Join(conflict, fmt.Errorf("%w: site c: down", coord.ErrPeerUnreachable)),
			status: http.StatusConflict, body: `"conflicts":[{"site":"b","differ":1,"extra":0,"missing":0,"examples":[{"ref":"refs/heads/main"`},
		{name: "refused", method: http.MethodPost, err: fmt.Errorf("%w: an import is running", coord.ErrImportRefused), status: http.StatusConflict},
		{name: "refdb down", method: http.MethodPost, err: fmt.Errorf("%w: timeout", coord.ErrUnavailable), status: http.StatusServiceUnavailable},
		{name: "peer down", method: http.MethodPost, err: fmt.Errorf("%w: site c", coord.ErrPeerUnreachable), status: http.StatusServiceUnavailable},
		{name: "GET", method: http.MethodGet, status: http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &importer{res: tc.res, err: tc.err}
			srv := httptest.NewServer(New(Config{Site: "a", Coord: f}))
			defer srv.Close()
			req, err := http.NewRequest(tc.method, srv.URL+"/api/v1/projects/tango%2Fcore/import", nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode, "%s", b)
			require.True(t, json.Valid(b), "%s", b)
			require.Contains(t, string(b), tc.body)
			if tc.err != nil {
				var body struct{ Error string }
				require.NoError(t, json.Unmarshal(b, &body))
				require.Equal(t, tc.err.Error(), body.Error)
			}
			if tc.method == http.MethodPost {
				require.Equal(t, []string{"tango/core"}, f.seen)
			}
		})
	}
}
