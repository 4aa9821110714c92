package workload

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
)

// SyntheticCorpus builds a small stand-in for a Gerrit corpus under dir and
// returns the path of its bundle: a main branch and changes changes, each
// with one patch-set ref (refs/changes/NN/N/1) and a NoteDb-like meta chain
// of metas commits (refs/changes/NN/N/meta) whose committer times interleave
// across changes, as real review traffic does. It is what tests and a
// `--quick` run without a corpus replay.
func SyntheticCorpus(ctx context.Context, g *Git, dir string, changes, metas int) (string, error) {
	repo := filepath.Join(dir, "synthetic.git")
	if _, err := g.Run(ctx, "", nil, "init", "--quiet", "--bare", "--initial-branch=main", repo); err != nil {
		return "", fmt.Errorf("synthetic corpus: %w", err)
	}
	const t0 = 1700000000
	var in bytes.Buffer
	blob := func(path, content string) {
		fmt.Fprintf(&in, "M 100644 inline %s\ndata %d\n%s\n", path, len(content), content)
	}
	msg := func(m string) { fmt.Fprintf(&in, "data %d\n%s\n", len(m)+1, m) }
	for i := range 5 {
		fmt.Fprintf(&in, "commit refs/heads/main\nmark :%d\ncommitter Dev <dev@example.com> %d +0000\n", i+1, t0+i)
		msg(fmt.Sprintf("main %d", i))
		if i > 0 {
			fmt.Fprintf(&in, "from :%d\n", i)
		}
		blob(fmt.Sprintf("src/file%d.txt", i), fmt.Sprintf("source file %d\n", i))
	}
	for n := 1; n <= changes; n++ {
		fmt.Fprintf(&in, "commit refs/changes/%02d/%d/1\ncommitter Dev <dev@example.com> %d +0000\n", n%100, n, t0+100+n)
		msg(fmt.Sprintf("change %d\n\nChange-Id: I%040x", n, n))
		fmt.Fprintf(&in, "from :5\n")
		blob(fmt.Sprintf("src/change%d.txt", n), fmt.Sprintf("the work of change %d\n", n))
	}
	for k := range metas {
		for n := 1; n <= changes; n++ {
			ref := fmt.Sprintf("refs/changes/%02d/%d/meta", n%100, n)
			// Interleaved: every change's k-th update before any (k+1)-th.
			fmt.Fprintf(&in, "commit %s\ncommitter Gerrit Code Review <gerrit@example.com> %d +0000\n", ref, t0+1000+k*1000+n*7)
			msg(fmt.Sprintf("Update patch set 1\n\nPatch-set: 1\nLabel: Code-Review=%+d", k%3-1))
			if k == 0 {
				// fast-import would otherwise start from an existing ref of
				// that name; a meta chain starts at a root commit.
				fmt.Fprintf(&in, "deleteall\n")
			}
			blob("ps1", fmt.Sprintf("comments of change %d round %d\n", n, k))
		}
	}
	if _, err := g.Run(ctx, repo, &in, "fast-import", "--quiet"); err != nil {
		return "", fmt.Errorf("synthetic corpus: %w", err)
	}
	bundle := filepath.Join(dir, "synthetic.bundle")
	if _, err := g.Run(ctx, repo, nil, "bundle", "create", "--quiet", bundle, "--all"); err != nil {
		return "", fmt.Errorf("synthetic corpus: %w", err)
	}
	return bundle, nil
}
