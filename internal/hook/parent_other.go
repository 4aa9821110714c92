//go:build !linux

package hook

// dieWithParent is a no-op where the kernel cannot tie a process to its
// parent's death.
func dieWithParent() bool { return true }
