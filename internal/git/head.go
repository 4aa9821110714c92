package git

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// HeadRef is where sitesync keeps a project's HEAD: a ref to a blob
// "ref: <branch>\n" (HeadBlob), written, guarded and replicated like any
// other ref, so a site that was down gets it on return; each site points
// its HEAD where the blob says. Clients neither see it nor push it
// (uploadpack.hideRefs and receive.hideRefs of the repositories sitesync
// creates).
const HeadRef = "refs/sitesync/head"

// ReservedRefs is the namespace of refs sitesync writes for itself.
const ReservedRefs = "refs/sitesync/"

// HeadBlob is the content of HeadRef's blob for HEAD pointing at target.
func HeadBlob(target string) []byte { return []byte("ref: " + target + "\n") }

// ParseHeadBlob is the target of a HeadBlob.
func ParseHeadBlob(b []byte) (string, error) {
	s, ok := strings.CutPrefix(string(b), "ref: ")
	s, nl := strings.CutSuffix(s, "\n")
	if !ok || !nl || !strings.HasPrefix(s, "refs/heads/") || strings.ContainsAny(s, "\n\x00") {
		return "", fmt.Errorf("not a HEAD record: %q", b)
	}
	return s, nil
}

// ReadHead is the branch HEAD of the repository at dir points at.
func ReadHead(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "HEAD"))
	if err != nil {
		return "", fmt.Errorf("read HEAD: %w", err)
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "ref: ")
	if !ok {
		return "", fmt.Errorf("HEAD of %s is detached", dir)
	}
	return s, nil
}

// SetHead points HEAD of the repository at dir at target (a branch,
// which need not exist yet). env is added to git's environment.
func SetHead(ctx context.Context, dir, target string, env []string) error {
	if cur, err := ReadHead(dir); err == nil && cur == target {
		return nil
	}
	return run(ctx, dir, env, nil, nil, "symbolic-ref", "HEAD", target)
}

// WriteBlob writes data as a blob into the repository at dir and returns
// its object name.
func WriteBlob(ctx context.Context, dir string, data []byte) (string, error) {
	var out bytes.Buffer
	if err := run(ctx, dir, nil, bytes.NewReader(data), &out, "hash-object", "-w", "--stdin"); err != nil {
		return "", err
	}
	id := strings.TrimSpace(out.String())
	if !IsID(id) {
		return "", fmt.Errorf("hash-object wrote %q", id)
	}
	return id, nil
}
