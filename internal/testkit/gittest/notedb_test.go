package gittest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGenerateNoteDb(t *testing.T) {
	e := Env(t)
	s := NoteDbShape{Changes: 12, Events: 8, Seed: 1}
	dir, writes := GenerateNoteDb(t, e, s)
	require.Equal(t, writes, NoteDbWrites(s), "deterministic for a shape")
	e.Run(t, dir, "fsck", "--strict", "--no-dangling")

	kinds := map[string]int{}
	for _, w := range writes {
		kinds[w.Kind]++
		for _, o := range w.Objects {
			require.Equal(t, o.Type, strings.TrimSpace(e.Run(t, dir, "cat-file", "-t", o.ID)))
		}
	}
	for _, k := range []string{"base", "sequence", "create", "meta", "patchset", "draft"} {
		require.Positive(t, kinds[k], k)
	}
	refs := e.Refs(t, dir)
	require.Contains(t, refs, "refs/changes/01/1001/1")
	require.Contains(t, refs, "refs/changes/01/1001/meta")
	require.Equal(t, "blob", strings.TrimSpace(e.Run(t, dir, "cat-file", "-t", "refs/sequences/changes")))
	log := e.Run(t, dir, "log", "--format=%B", "refs/changes/01/1001/meta")
	for _, footer := range []string{"Patch-set: ", "Status: ", "Label: ", "Reviewer: "} {
		require.Contains(t, log, footer)
	}
	// Some meta tree is a notes map of JSON comments.
	var notes bool
	for _, w := range writes {
		for _, o := range w.Objects {
			notes = notes || (o.Type == "blob" && strings.HasPrefix(string(o.Data), "{\n  \"comments\": ["))
		}
	}
	require.True(t, notes)
}
