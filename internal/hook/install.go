package hook

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Names of the hooks sitesync installs.
var Installed = []string{PreReceive, ReferenceTransaction}

// WriteScripts writes hook scripts into dir that run `binary hook <name>`
// against the daemon at socket, and returns dir. Point git at them with
// core.hooksPath. Each script is written to a temporary file and renamed,
// so git never runs half a script.
func WriteScripts(dir, binary, socket string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("hook scripts: %w", err)
	}
	for _, name := range Installed {
		script := fmt.Sprintf("#!/bin/sh\n# Written by sitesync: hands git's %s hook to the sitesync daemon.\n%s=${%s:-%s} exec %s hook %s \"$@\"\n",
			name, EnvSocket, EnvSocket, shellQuote(socket), shellQuote(binary), name)
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
			return fmt.Errorf("hook scripts: %w", err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("hook scripts: %w", err)
		}
	}
	return nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
