package git

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// CheckRefUpdates asks git whether it would take the ref transaction
// updates in the repository at dir, without taking it: one `git update-ref
// --stdin` runs start, the updates, prepare (which locks every ref and
// makes git's own checks: ref names, a ref that is a directory of another,
// a branch that would point at something other than a commit, old values)
// and abort. env is added to the process's environment (sitesync's own
// hooks must let a check through). The error carries what git said.
func CheckRefUpdates(ctx context.Context, dir string, env []string, updates []RefUpdate) error {
	if len(updates) == 0 {
		return nil
	}
	var in strings.Builder
	in.WriteString("start\n")
	for _, up := range updates {
		if err := checkUpdate(up); err != nil {
			return err
		}
		if up.Old == "" {
			fmt.Fprintf(&in, "update %s %s\n", up.Ref, up.New)
		} else {
			fmt.Fprintf(&in, "update %s %s %s\n", up.Ref, up.New, up.Old)
		}
	}
	in.WriteString("prepare\nabort\n")
	var out bytes.Buffer
	return run(ctx, dir, env, strings.NewReader(in.String()), &out, "update-ref", "--stdin")
}
