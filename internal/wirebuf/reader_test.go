package wirebuf

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReader(t *testing.T) {
	b := binary.AppendUvarint(nil, 300)
	b = append(b, 7)
	b = binary.AppendUvarint(b, 3)
	b = append(b, "abc"...)
	r := &Reader{B: b}
	require.EqualValues(t, 300, r.Uvarint("n"))
	require.EqualValues(t, 7, r.Byte("flag"))
	require.Equal(t, "abc", r.String("name", 10))
	require.NoError(t, r.Err)
	require.Empty(t, r.B)

	for _, tc := range []struct {
		name string
		in   []byte
		read func(*Reader)
		want string
	}{
		{name: "empty varint", in: nil, read: func(r *Reader) { r.Uvarint("count") }, want: "truncated at count"},
		{name: "bytes past the end", in: []byte{1, 2}, read: func(r *Reader) { r.Bytes(3, "id") }, want: "truncated at id"},
		{name: "long string", in: binary.AppendUvarint(nil, 11), read: func(r *Reader) { r.String("name", 10) }, want: "name of 11 bytes is too long"},
		{name: "first error sticks", in: nil, read: func(r *Reader) { r.Byte("first"); r.Byte("second") }, want: "truncated at first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Reader{B: tc.in}
			tc.read(r)
			require.EqualError(t, r.Err, tc.want)
			require.Zero(t, r.Uvarint("after"), "reads after an error return zero")
		})
	}
}

func TestBytesCapped(t *testing.T) {
	r := &Reader{B: []byte("abcdef")}
	v := r.Bytes(3, "head")
	_ = append(v, 'X')
	require.Equal(t, "def", string(r.B), "appending to a read slice leaves the rest alone")
}
