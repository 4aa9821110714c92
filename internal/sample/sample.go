// Package sample writes deterministic sample git histories as git
// fast-import streams: the demo's sample repository and the repositories
// of tests. Pure functions of their Shape.
package sample

import (
	"fmt"
	"io"
	"strings"
)

// Shape says what a sample history holds.
type Shape struct {
	Commits  int // on main
	Branches int // besides main, each forking from main with a few commits
	Tags     int // annotated tags on main
	FileSize int // bytes per changed file; 0 means a few hundred
}

// Write writes a fast-import stream of the shape to w: feed it to
// `git fast-import` in an empty repository.
func Write(w io.Writer, s Shape) error {
	size := s.FileSize
	if size == 0 {
		size = 300
	}
	var err error
	printf := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	mark := 0
	commit := func(branch string, n int, from int) int {
		mark++
		printf("commit refs/heads/%s\nmark :%d\ncommitter Test Committer <committer@example.com> %d +0000\n", branch, mark, 1700000000+mark)
		msg := fmt.Sprintf("%s commit %d\n", branch, n)
		printf("data %d\n%s", len(msg), msg)
		if from > 0 {
			printf("from :%d\n", from)
		}
		content := FileContent(branch, n, size)
		printf("M 100644 inline dir%d/file%d.txt\ndata %d\n%s\n", n%7, n%31, len(content), content)
		return mark
	}
	var mainMarks []int
	prev := 0
	for i := range s.Commits {
		prev = commit("main", i, prev)
		mainMarks = append(mainMarks, prev)
	}
	for b := 1; b <= s.Branches && len(mainMarks) > 0; b++ {
		p := mainMarks[(b*len(mainMarks))/(s.Branches+1)]
		for i := range 3 {
			p = commit(fmt.Sprintf("branch-%d", b), i, p)
		}
	}
	for t := 1; t <= s.Tags && len(mainMarks) > 0; t++ {
		msg := fmt.Sprintf("release %d\n", t)
		printf("tag v%d\nfrom :%d\ntagger Test Committer <committer@example.com> %d +0000\ndata %d\n%s",
			t, mainMarks[(t*len(mainMarks))/(s.Tags+1)], 1700000000+t, len(msg), msg)
	}
	return err
}

// FileContent is deterministic text that differs per commit and deltas well
// against its neighbours, like source code does.
func FileContent(branch string, n, size int) string {
	var b strings.Builder
	for line := 0; b.Len() < size; line++ {
		fmt.Fprintf(&b, "%s line %d of change %d: %08x\n", branch, line, n, uint32(n*2654435761+line))
	}
	return b.String()
}
