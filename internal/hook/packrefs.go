package hook

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sitesync/sitesync/internal/refmove"
)

// git pack-refs (run by git gc, git gc --auto after a push, and git
// maintenance) moves refs between loose files and packed-refs without
// changing any value, but git 2.39 runs the reference-transaction hook for
// it as if it did: "0 V ref" for each ref it writes into packed-refs, then a
// transaction "V 0 ref" per loose file it prunes. Asking the daemon would
// have it decide creations and deletions that are not happening (or refuse
// them, for a gc started by a push and carrying its SITESYNC_TXN, so gc
// never completes). The hook lets them through without asking: there is
// nothing to decide, and a round trip per pruned ref (10,000 hook runs to
// pack 5,000 refs) would be pure cost. The installed script does the same
// check in shell (see shortcut) so that the Go binary does not start per
// pruned ref; this is the check for every other way of running the hook.
//
// The check is about which process ran the hook, not a security boundary: a
// local user who can run programs against the repository can write its ref
// files directly.

// maxAncestry is how far up from the hook the git that ran it is looked
// for: git runs the hook script (1), which may be a shell that runs
// sitesync without exec (2), itself run by a wrapper (3).
const maxAncestry = 3

// packRefsBookkeeping reports whether every update is one pack-refs sends:
// a ref entering packed-refs (from the zero id) or its loose file pruned
// (to it). An update from one value to another never is.
func packRefsBookkeeping(ups []Update) bool {
	for _, u := range ups {
		if (u.Old == refmove.ZeroID) == (u.New == refmove.ZeroID) {
			return false
		}
	}
	return len(ups) > 0
}

// ranByPackRefs reports whether the nearest git process above the hook
// process (pid = os.Getppid(), its parent) is `git pack-refs`, reading
// /proc (false wherever it cannot).
func ranByPackRefs(pid int) bool {
	for range maxAncestry {
		if pid <= 1 {
			return false
		}
		comm, ppid, ok := procStat(pid)
		if !ok {
			return false
		}
		if comm == "git" || strings.HasPrefix(comm, "git-") {
			argv, ok := procCmdline(pid)
			return ok && packRefsCommand(argv)
		}
		pid = ppid
	}
	return false
}

// procStat reads the command name and parent of pid from /proc/<pid>/stat:
// "<pid> (<comm>) <state> <ppid> ...", where comm may hold spaces and
// parentheses.
func procStat(pid int) (comm string, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return "", 0, false
	}
	return string(b[open+1 : end]), ppid, true
}

func procCmdline(pid int) ([]string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil, false
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), true
}

// packRefsCommand reports whether argv runs git pack-refs: "git-pack-refs
// ...", or "git [global options] pack-refs ...".
func packRefsCommand(argv []string) bool {
	if len(argv) == 0 {
		return false
	}
	switch filepath.Base(argv[0]) {
	case "git-pack-refs":
		return true
	case "git":
	default:
		return false
	}
	for i := 1; i < len(argv); i++ {
		switch a := argv[i]; {
		case a == "-c" || a == "-C" || a == "--git-dir" || a == "--work-tree" ||
			a == "--namespace" || a == "--super-prefix" || a == "--config-env":
			i++ // the option's value
		case strings.HasPrefix(a, "-"):
		default:
			return a == "pack-refs"
		}
	}
	return false
}
