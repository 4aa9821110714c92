package refdb

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrConflict: a CAS was rejected because a ref did not hold the
	// expected value. Nothing changed. Returned as a *ConflictError.
	ErrConflict = errors.New("refdb: conflict")
	// ErrInvalid: the request was malformed (project, ref, object name or
	// batch). Nothing was tried.
	ErrInvalid = errors.New("refdb: invalid request")
	// ErrUnavailable: the backend could not be reached or did not answer in
	// time. For CAS the outcome is unknown (see Store).
	ErrUnavailable = errors.New("refdb: unavailable")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("refdb: closed")
)

// RefConflict describes one ref of a rejected batch.
type RefConflict struct {
	Ref     string
	Want    string // the Old value the caller expected
	Current Record // what the store holds (Value refmove.ZeroID if absent)
}

// ConflictError is the error of a rejected CAS. It names every ref of the
// batch whose current value differs from the expected one, with the value,
// version and writing site found; the push rejection message is built from it.
type ConflictError struct {
	Project string
	Refs    []RefConflict
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refdb: conflict in project %q:", e.Project)
	for i, c := range e.Refs {
		if i > 0 {
			b.WriteString(";")
		}
		cur := c.Current
		switch {
		case !cur.Exists() && cur.Version == 0:
			fmt.Fprintf(&b, " %s does not exist, expected %s", c.Ref, c.Want)
		case !cur.Exists():
			fmt.Fprintf(&b, " %s was deleted at site %q (version %d), expected %s", c.Ref, cur.Site, cur.Version, c.Want)
		default:
			fmt.Fprintf(&b, " %s is %s (version %d, site %q), expected %s", c.Ref, cur.Value, cur.Version, cur.Site, c.Want)
		}
	}
	return b.String()
}

// Unavailable wraps a backend error so that errors.Is(err, ErrUnavailable)
// holds while the cause (e.g. context.DeadlineExceeded) stays visible to
// errors.Is and errors.As.
func Unavailable(op string, err error) error {
	return &unavailableError{op: op, err: err}
}

type unavailableError struct {
	op  string
	err error
}

func (e *unavailableError) Error() string {
	return e.op + ": refdb unavailable: " + e.err.Error()
}

func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }
