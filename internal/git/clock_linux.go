package git

import (
	"syscall"
	"time"
	"unsafe"
)

// clockRealtimeCoarse is CLOCK_REALTIME_COARSE, the clock the kernel stamps
// files with (current_time); time.Now reads a finer one that may run up to
// a tick ahead of it.
const clockRealtimeCoarse = 5

// coarseNow is a time no file made after the call is stamped before.
func coarseNow() time.Time {
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockRealtimeCoarse, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return time.Now() // later than needed: our own files may be missed, never another's taken
	}
	return time.Unix(ts.Unix())
}
