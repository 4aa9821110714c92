package hook

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sitesync/sitesync/internal/git"
)

// Names of the hooks sitesync installs.
var Installed = []string{PreReceive, UpdateHook, ReferenceTransaction}

// WriteScripts writes hook scripts into dir that run `binary hook <name>`
// against the daemon at socket, and returns dir. Point git at them with
// core.hooksPath. Each script is written to a temporary file and renamed,
// so git never runs half a script.
func WriteScripts(dir, binary, socket string) error {
	return writeScripts(dir, Installed, binary, socket)
}

// Hook sets for the pushes the daemon runs itself (WritePushScripts): an
// atomic push is decided at reference-transaction "prepared", a
// non-atomic one at "update". Each set leaves out the hook its pushes do
// not need, which git would otherwise start once or twice per ref.
var (
	AtomicPushHooks = []string{PreReceive, ReferenceTransaction}
	PerRefPushHooks = []string{PreReceive, UpdateHook}
)

// WritePushScripts writes the hook sets of the daemon's own pushes into
// dir/atomic and dir/per-ref, for core.hooksPath of its receive-packs.
func WritePushScripts(dir, binary, socket string) (atomic, perRef string, err error) {
	atomic, perRef = filepath.Join(dir, "atomic"), filepath.Join(dir, "per-ref")
	if err := writeScripts(atomic, AtomicPushHooks, binary, socket); err != nil {
		return "", "", err
	}
	return atomic, perRef, writeScripts(perRef, PerRefPushHooks, binary, socket)
}

func writeScripts(dir string, names []string, binary, socket string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("hook scripts: %w", err)
	}
	for _, name := range names {
		script := fmt.Sprintf("#!/bin/sh\n# Written by sitesync: hands git's %s hook to the sitesync daemon.\n%s%s=${%s:-%s} exec %s hook %s \"$@\"\n",
			name, shortcut(name), EnvSocket, EnvSocket, shellQuote(socket), shellQuote(binary), name)
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

// shortcut is the shell that answers, without starting sitesync, the hook
// calls that need no decision: git pack-refs's bookkeeping (packrefs.go), a
// write the daemon itself applies, the reference-transaction phases
// after the decision ("committed", "aborted"), whose exit status git
// ignores, and the "prepared" and "update" calls of a push whose every ref
// was decided (EnvDecided): git runs them once per ref of a non-atomic
// push. "update" decides only for a non-atomic push sitesync runs
// (EnvTxn). Each sitesync start costs a few milliseconds, and pack-refs
// runs the hook twice per ref it prunes.
//
// pack-refs is recognised by its command line, /proc/$PPID/cmdline (git
// execs the script, so $PPID is git), which the shell's read builtin takes
// with its NUL separators dropped: "/usr/lib/git-core/gitpack-refs--all--prune"
// when gc or maintenance runs it, "gitpack-refs--all" typed by an admin;
// and by the executable's name, /proc/$PPID/comm, "git". Only those exact
// forms match here; any other goes to sitesync, which parses the command
// line (and looks further up). This path starts no process: pack-refs runs
// it 10,000 times for 5,000 refs. It leaves git's input unread, which git
// 2.39 allows (it ignores EPIPE from a hook that exits before reading).
// Elsewhere git's input is read so git never writes into a closed pipe.
func shortcut(name string) string {
	var s string
	if name == ReferenceTransaction {
		s += "read -r git 2>/dev/null </proc/$PPID/cmdline; case \"$git\" in " +
			"gitpack-refs|gitpack-refs--all|gitpack-refs--all--prune|*/gitpack-refs|*/gitpack-refs--all|*/gitpack-refs--all--prune) " +
			"read -r comm 2>/dev/null </proc/$PPID/comm; if [ \"$comm\" = git ]; then exit 0; fi ;; esac\n"
	}
	if name == UpdateHook {
		// Only a non-atomic push sitesync runs decides here, and only
		// until every one of its refs was decided.
		s += "if [ -z \"$" + EnvTxn + "\" ]; then exit 0; fi\n"
		s += "if [ -n \"$" + EnvDecided + "\" ] && [ -e \"$" + EnvDecided + "\" ]; then exit 0; fi\n"
		return s
	}
	s += "if [ -n \"$" + EnvApplying + "\" ]; then cat >/dev/null; exit 0; fi\n"
	if name == ReferenceTransaction {
		s += "case \"$1\" in " + Committed + "|" + Aborted + ") cat >/dev/null; exit 0 ;; esac\n"
		s += "if [ -n \"$" + EnvDecided + "\" ] && [ -e \"$" + EnvDecided + "\" ]; then cat >/dev/null; exit 0; fi\n"
	}
	return s
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Install points every repository under root at the hook scripts in
// hooksDir (core.hooksPath), so that writes by any git process — another
// server's receive-pack, an admin's update-ref — go through the daemon. It
// returns the projects it wired.
func Install(ctx context.Context, root git.Root, hooksDir string) ([]string, error) {
	projects, err := root.List()
	if err != nil {
		return nil, err
	}
	for _, p := range projects {
		dir, err := root.Existing(p)
		if err != nil {
			return nil, err
		}
		if err := git.SetConfig(ctx, dir, "core.hooksPath", hooksDir); err != nil {
			return nil, fmt.Errorf("install hooks in %q: %w", p, err)
		}
	}
	return projects, nil
}
