package workload

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"
)

// clientConfig is the client repository's configuration. The pack workload's
// blobs are random, so compressing them only burns CPU: the client stores
// them as they are and treats them as big files (never delta-compressed), so
// the upload time measures the network and the servers, not zlib. The
// baseline servers are set up the same way (see bench/baseline).
var clientConfig = []string{
	"core.compression", "0",
	"core.bigFileThreshold", "512k",
	"gc.auto", "0",
}

// client is a user's bare repository from which the push and pack workloads
// push commits to one branch.
type client struct {
	git *Git
	dir string
	ref string // the branch pushed
	tip string // its current value
}

// newClient clones seed into dir/name and picks the branch to push: the one
// seed's HEAD names, else the first branch.
func newClient(ctx context.Context, g *Git, seed, dir string) (*client, error) {
	if _, err := g.Run(ctx, "", nil, "clone", "--quiet", "--bare", seed, dir); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := g.Configure(ctx, dir, clientConfig...); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	ref, err := g.Run(ctx, seed, nil, "symbolic-ref", "--quiet", "HEAD")
	ref = strings.TrimSpace(ref)
	if err == nil {
		if _, err = g.RevParse(ctx, dir, ref); err != nil {
			ref = ""
		}
	}
	if ref == "" {
		out, err := g.Run(ctx, dir, nil, "for-each-ref", "--count=1", "--format=%(refname)", "refs/heads/")
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		ref = strings.TrimSpace(out)
		if ref == "" {
			return nil, fmt.Errorf("client: seed %q has no branch", seed)
		}
	}
	tip, err := g.RevParse(ctx, dir, ref)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &client{git: g, dir: dir, ref: ref, tip: tip}, nil
}

// file is one file a commit adds.
type file struct {
	path string
	size int64
	data io.Reader
}

// commit adds one commit with files on top of the branch and returns the
// update that pushes it.
func (c *client) commit(ctx context.Context, msg string, files []file) (Update, error) {
	var parts []io.Reader
	var total int64
	head := fmt.Sprintf("commit %s\ncommitter sitesync bench <bench@sitesync.invalid> %d +0000\ndata %d\n%s\nfrom %s\n",
		c.ref, time.Now().Unix(), len(msg)+1, msg, c.tip)
	parts = append(parts, strings.NewReader(head))
	for _, f := range files {
		parts = append(parts, strings.NewReader(fmt.Sprintf("M 100644 inline %s\ndata %d\n", f.path, f.size)),
			io.LimitReader(f.data, f.size), strings.NewReader("\n"))
		total += f.size
	}
	if _, err := c.git.Run(ctx, c.dir, io.MultiReader(parts...), "fast-import", "--quiet"); err != nil {
		return Update{}, fmt.Errorf("client commit: %w", err)
	}
	tip, err := c.git.RevParse(ctx, c.dir, c.ref)
	if err != nil {
		return Update{}, fmt.Errorf("client commit: %w", err)
	}
	u := Update{Kind: ClientPush, Ref: c.ref, Old: c.tip, New: tip, Source: c.dir, Bytes: total}
	us := []Update{u}
	if err := c.git.SetRaw(ctx, c.dir, us); err != nil {
		return Update{}, fmt.Errorf("client commit: %w", err)
	}
	u = us[0]
	c.tip = tip
	return u, nil
}

// randomData is incompressible content, different for every seed.
func randomData(seed uint64) io.Reader {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(key)
}

func clientDir(cfg Config, workload, target string) string {
	return filepath.Join(cfg.Dir, workload+"-"+strings.NewReplacer("/", "_").Replace(target)+"-client.git")
}
