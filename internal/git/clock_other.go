//go:build !linux

package git

import "time"

// coarseNow is a time no file made after the call is stamped before, or
// later: then a file of ours may be missed, never another's taken.
func coarseNow() time.Time { return time.Now() }
