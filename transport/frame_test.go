package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fuzzMaxFrame keeps fuzzing allocations small while still exercising the limit.
const fuzzMaxFrame = 64 << 10

func testCodec(tb testing.TB, max int64) *codec {
	tb.Helper()
	c, err := newCodec(max)
	require.NoError(tb, err)
	tb.Cleanup(c.close)
	return c
}

func rawFrame(t frameType, flags byte, length uint32, body []byte) []byte {
	b := []byte{byte(t), flags}
	b = binary.BigEndian.AppendUint32(b, length)
	return append(b, body...)
}

func TestReadFrame(t *testing.T) {
	c := testCodec(t, 4096)
	compressible := bytes.Repeat([]byte("abcd"), 1000) // 4000 bytes, compresses
	enc, _ := zstd.NewWriter(nil)
	bomb := enc.EncodeAll(make([]byte, 1<<20), nil) // 1 MiB of zeros in a few bytes
	tests := []struct {
		name     string
		in       []byte
		wantType frameType
		wantBody []byte
		reason   string // FrameError reason; "" = success
	}{
		{name: "plain", in: rawFrame(frameRequest, 0, 3, []byte("abc")), wantType: frameRequest, wantBody: []byte("abc")},
		{name: "empty body", in: rawFrame(frameResponse, 0, 0, nil), wantType: frameResponse, wantBody: []byte{}},
		{name: "compressed round trip", in: must(c.appendFrame(nil, frameRequest, compressible, true)), wantType: frameRequest, wantBody: compressible},
		{name: "unknown type", in: rawFrame(9, 0, 0, nil), reason: "bad_type"},
		{name: "type zero", in: rawFrame(0, 0, 0, nil), reason: "bad_type"},
		{name: "unknown flag", in: rawFrame(frameRequest, 2, 0, nil), reason: "bad_flags"},
		{name: "too large before allocation", in: rawFrame(frameRequest, 0, 1<<31, nil), reason: "too_large"},
		{name: "truncated header", in: []byte{2, 0, 0}, reason: "truncated"},
		{name: "truncated body", in: rawFrame(frameRequest, 0, 10, []byte("abc")), reason: "truncated"},
		{name: "length claim alone allocates nothing", in: rawFrame(frameRequest, 0, 4000, []byte("abc")), reason: "truncated"},
		{name: "zstd without content size", in: rawFrame(frameRequest, flagZstd, 9, []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 1, 0, 0}), reason: "zstd"},
		{name: "bad zstd", in: rawFrame(frameRequest, flagZstd, 3, []byte("abc")), reason: "zstd"},
		{name: "zstd bomb", in: rawFrame(frameRequest, flagZstd, uint32(len(bomb)), bomb), reason: "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, body, err := c.readFrame(bytes.NewReader(tt.in))
			if tt.reason != "" {
				var fe *FrameError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, tt.reason, fe.Reason)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantType, typ)
			assert.Equal(t, tt.wantBody, body)
		})
	}
	_, err := c.appendFrame(nil, frameRequest, make([]byte, 4097), true)
	assert.ErrorIs(t, err, ErrFrameTooLarge)
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestMessages(t *testing.T) {
	h := hello{MinVersion: 1, Version: 3, Site: "site-a.eu", Instance: uuid.New(), Boot: 42, Caps: []string{"zstd", "x"}}
	got, err := decodeHello(h.append(nil))
	require.NoError(t, err)
	assert.Equal(t, h, got)
	r := request{Kind: 7, Timeout: 1500 * time.Millisecond, Payload: []byte("p")}
	gr, err := decodeRequest(r.append(nil))
	require.NoError(t, err)
	assert.Equal(t, r, gr)
	resp := response{Status: StatusError, Payload: []byte("boom")}
	gresp, err := decodeResponse(resp.append(nil))
	require.NoError(t, err)
	assert.Equal(t, resp, gresp)

	bad := []struct {
		name string
		err  error
	}{
		{"hello bad site", second(decodeHello(hello{Version: 1, Site: "a/b"}.append(nil)))},
		{"hello empty site", second(decodeHello(hello{Version: 1}.append(nil)))},
		{"hello empty range", second(decodeHello(hello{MinVersion: 2, Version: 1, Site: "a"}.append(nil)))},
		{"hello trailing", second(decodeHello(append(hello{Version: 1, Site: "a"}.append(nil), 0)))},
		{"hello short", second(decodeHello([]byte{0, 1}))},
		{"request kind 0", second(decodeRequest(request{}.append(nil)))},
		{"request short", second(decodeRequest([]byte{0}))},
		{"response empty", second(decodeResponse(nil))},
		{"response bad status", second(decodeResponse([]byte{9}))},
	}
	for _, tt := range bad {
		var fe *FrameError
		assert.True(t, errors.As(tt.err, &fe), tt.name)
	}
}

func second[T any](_ T, err error) error { return err }

// FuzzReadFrame: the frame decoder never panics nor allocates past its
// limit, and every frame it accepts re-encodes to a frame that decodes to
// the same type and body.
func FuzzReadFrame(f *testing.F) {
	c := testCodec(f, fuzzMaxFrame)
	f.Add(must(c.appendFrame(nil, frameRequest, request{Kind: 1, Payload: []byte("hi")}.append(nil), true)))
	f.Add(must(c.appendFrame(nil, frameResponse, bytes.Repeat([]byte("refs/changes/"), 200), true)))
	f.Add(must(c.appendFrame(nil, frameHello, hello{Version: 1, Site: "a", Caps: []string{"zstd"}}.append(nil), true)))
	f.Add(rawFrame(frameNotify, 0, 0, nil))
	f.Add(rawFrame(frameStreamOpen, flagZstd, 4, []byte{0x28, 0xb5, 0x2f, 0xfd}))
	f.Fuzz(func(t *testing.T, in []byte) {
		typ, body, err := c.readFrame(bytes.NewReader(in))
		if err != nil {
			return
		}
		if int64(len(body)) > fuzzMaxFrame {
			t.Fatalf("body of %d bytes over the limit", len(body))
		}
		again := must(c.appendFrame(nil, typ, body, true))
		typ2, body2, err := c.readFrame(bytes.NewReader(again))
		if err != nil || typ2 != typ || !bytes.Equal(body, body2) {
			t.Fatalf("round trip: %v %v/%v", err, typ, typ2)
		}
	})
}

// FuzzHello: decodeHello ∘ append ∘ decodeHello = decodeHello.
func FuzzHello(f *testing.F) {
	f.Add(hello{MinVersion: 1, Version: 1, Site: "a", Instance: uuid.New(), Boot: 1, Caps: []string{"zstd"}}.append(nil))
	f.Add(hello{MinVersion: 1, Version: 9, Site: "bangalore-1", Caps: nil}.append(nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := decodeHello(in)
		if err != nil {
			return
		}
		h2, err := decodeHello(h.append(nil))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if h.Site != h2.Site || h.Version != h2.Version || h.MinVersion != h2.MinVersion || h.Instance != h2.Instance || h.Boot != h2.Boot || len(h.Caps) != len(h2.Caps) {
			t.Fatalf("round trip: %+v != %+v", h, h2)
		}
		for i := range h.Caps {
			if h.Caps[i] != h2.Caps[i] {
				t.Fatalf("cap %d: %q != %q", i, h.Caps[i], h2.Caps[i])
			}
		}
	})
}

// FuzzRequest covers the body of request, notify and stream-open frames.
func FuzzRequest(f *testing.F) {
	f.Add(request{Kind: 1, Timeout: time.Second, Payload: []byte("x")}.append(nil))
	f.Add(request{Kind: 65535}.append(nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := decodeRequest(in)
		if err != nil {
			return
		}
		r2, err := decodeRequest(r.append(nil))
		if err != nil || r2.Kind != r.Kind || r2.Timeout != r.Timeout || !bytes.Equal(r.Payload, r2.Payload) {
			t.Fatalf("round trip: %v %+v %+v", err, r, r2)
		}
	})
}

// FuzzResponse covers the body of response frames.
func FuzzResponse(f *testing.F) {
	f.Add(response{Status: StatusOK, Payload: []byte("ok")}.append(nil))
	f.Add(response{Status: StatusNoHandler, Payload: []byte("no handler")}.append(nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := decodeResponse(in)
		if err != nil {
			return
		}
		r2, err := decodeResponse(r.append(nil))
		if err != nil || r2.Status != r.Status || !bytes.Equal(r.Payload, r2.Payload) {
			t.Fatalf("round trip: %v %+v %+v", err, r, r2)
		}
	})
}
