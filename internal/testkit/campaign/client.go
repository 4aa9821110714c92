package campaign

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// client is the user's side: one bare repository holding every commit any
// operation ever made, so every value a site can hold is an object the
// client has, and pushes send only what a site lacks.
type client struct {
	git  *gitRunner
	dir  string
	seed uint64
	n    atomic.Int64 // commits made: each one's content and time are its own
}

func newClient(ctx context.Context, g *gitRunner, dir string, seed uint64) (*client, error) {
	if _, err := g.run(ctx, "", nil, "init", "--quiet", "--bare", "--initial-branch=main", dir); err != nil {
		return nil, err
	}
	return &client{git: g, dir: dir, seed: seed}, nil
}

// commits makes n new commits on parent ("" for a root commit) and returns
// the last. Each adds a file of its own, so no two commits of a run are the
// same object even on the same parent. Safe for concurrent use (git
// fast-import writes a pack of its own).
func (c *client) commits(ctx context.Context, parent string, n int, label string) (string, error) {
	marks, err := os.CreateTemp(c.dir, "marks-*")
	if err != nil {
		return "", err
	}
	marks.Close()
	defer os.Remove(marks.Name())
	// Each call writes a ref of its own: concurrent fast-imports sharing
	// one would race for its lock. The client's refs are never read.
	ref := fmt.Sprintf("refs/campaign/%d", c.n.Add(1))
	var in strings.Builder
	for i := range n {
		k := c.n.Add(1)
		fmt.Fprintf(&in, "commit %s\nmark :%d\ncommitter Campaign <campaign@example.com> %d +0000\n", ref, i+1, 1700000000+k)
		msg := fmt.Sprintf("%s (seed %d, commit %d)\n", label, c.seed, k)
		fmt.Fprintf(&in, "data %d\n%s", len(msg), msg)
		switch {
		case i > 0:
			fmt.Fprintf(&in, "from :%d\n", i)
		case parent != "":
			fmt.Fprintf(&in, "from %s\n", parent)
		}
		body := strings.Repeat(fmt.Sprintf("seed %d commit %d %s\n", c.seed, k, label), 1+int(k%7))
		fmt.Fprintf(&in, "M 100644 inline f/%d.txt\ndata %d\n%s\n", k, len(body), body)
	}
	if _, err := c.git.run(ctx, c.dir, []byte(in.String()), "fast-import", "--quiet", "--export-marks="+marks.Name()); err != nil {
		return "", err
	}
	b, err := os.ReadFile(marks.Name())
	if err != nil {
		return "", err
	}
	want := fmt.Sprintf(":%d ", n)
	for _, line := range strings.Split(string(b), "\n") {
		if id, ok := strings.CutPrefix(line, want); ok {
			return strings.TrimSpace(id), nil
		}
	}
	return "", fmt.Errorf("fast-import: no mark %d in %s", n, filepath.Base(marks.Name()))
}

// parent is the first parent of commit in the client's repository, "" for
// a root commit.
func (c *client) parent(ctx context.Context, commit string) (string, error) {
	return c.git.value(ctx, c.dir, commit+"^")
}
