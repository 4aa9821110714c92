package wirebuf

import (
	"encoding/binary"
	"fmt"
)

// Reader consumes B; Err is the first error met, after which every read
// returns a zero value.
type Reader struct {
	B   []byte
	Err error
}

// Fail records an error unless one is recorded already.
func (r *Reader) Fail(format string, args ...any) {
	if r.Err == nil {
		r.Err = fmt.Errorf(format, args...)
	}
}

// Uvarint reads an unsigned varint; what names the field in the error.
func (r *Reader) Uvarint(what string) uint64 {
	if r.Err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.B)
	if k <= 0 {
		r.Fail("truncated at %s", what)
		return 0
	}
	r.B = r.B[k:]
	return v
}

// Bytes reads the next n bytes (capped: appending to them never writes
// into what follows).
func (r *Reader) Bytes(n uint64, what string) []byte {
	if r.Err != nil {
		return nil
	}
	if n > uint64(len(r.B)) {
		r.Fail("truncated at %s", what)
		return nil
	}
	v := r.B[:n:n]
	r.B = r.B[n:]
	return v
}

// Byte reads one byte.
func (r *Reader) Byte(what string) byte {
	if b := r.Bytes(1, what); len(b) == 1 {
		return b[0]
	}
	return 0
}

// String reads a uvarint length, at most max, then that many bytes.
func (r *Reader) String(what string, max uint64) string {
	n := r.Uvarint(what)
	if n > max {
		r.Fail("%s of %d bytes is too long", what, n)
		return ""
	}
	return string(r.Bytes(n, what))
}

// AppendString appends s as Reader.String reads it: its length as a
// uvarint, then its bytes.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
