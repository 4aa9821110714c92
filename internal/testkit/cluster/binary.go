package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// builtBinary builds ./cmd/sitesync of the enclosing module once per process.
// The binary goes to a directory of os.TempDir named by the module root, and
// is renamed into place, so concurrent test processes of one checkout share
// it (and the Go build cache makes a rebuild a link step) and nothing piles
// up in /tmp run after run.
var builtBinary = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("build sitesync: not inside the sitesync module; set Options.Binary")
	}
	root := filepath.Dir(gomod)
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("sitesync-cluster-bin-%d-%s", os.Getuid(), hex.EncodeToString(sum[:6])))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build sitesync: %w", err)
	}
	tmp := filepath.Join(dir, fmt.Sprintf("sitesync.%d.tmp", os.Getpid()))
	cmd := exec.Command("go", "build", "-o", tmp, "./cmd/sitesync")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("go build ./cmd/sitesync: %w\n%s", err, out)
	}
	bin := filepath.Join(dir, "sitesync")
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("build sitesync: %w", err)
	}
	return bin, nil
})
