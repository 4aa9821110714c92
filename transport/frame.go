package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/semaphore"
)

// Kind names a message type of the layer above (PREPARE, VOTE, PACK, …).
// The transport only routes on it. Kind 0 is invalid.
type Kind uint16

// Status is the outcome carried by a response frame.
type Status uint8

// Response statuses.
const (
	StatusOK         Status = 0 // handler returned a reply
	StatusError      Status = 1 // handler returned an error; the payload is its text
	StatusNoHandler  Status = 2 // no handler for the kind at the peer
	StatusTooLarge   Status = 3 // the peer refused a frame above its MaxFrame
	StatusBadRequest Status = 4 // the peer could not decode the request
	maxStatus               = StatusBadRequest
)

// Wire format. Every control message is one frame:
//
//	type u8 | flags u8 | length u32 big-endian | body (length bytes)
//
// flags bit 0 means the body is zstd-compressed; both the wire length and the
// decompressed length are bounded by MaxFrame. A bulk stream is one
// frameStreamOpen followed by raw bytes up to the stream's FIN; its reply is a
// frameResponse on the way back.
type frameType uint8

const (
	frameHello      frameType = 1 // hello, first frame of the first stream, both ways
	frameRequest    frameType = 2 // request; answered by frameResponse
	frameNotify     frameType = 3 // request without an answer (unidirectional stream)
	frameStreamOpen frameType = 4 // request whose payload is the header of a raw byte stream
	frameResponse   frameType = 5 // response
	maxFrameType              = frameResponse

	frameHeaderLen = 6
	flagZstd       = 1

	// compressThreshold: bodies up to this size go uncompressed; below it
	// zstd's frame overhead and CPU buy nothing.
	compressThreshold = 512
)

func (t frameType) String() string {
	switch t {
	case frameHello:
		return "hello"
	case frameRequest:
		return "request"
	case frameNotify:
		return "notify"
	case frameStreamOpen:
		return "stream_open"
	case frameResponse:
		return "response"
	}
	return fmt.Sprintf("frame(%d)", uint8(t))
}

// FrameError is a frame from a peer that was rejected. Reason is a short
// token (also the metric label): too_large, bad_type, bad_flags, zstd,
// truncated, malformed, unexpected.
type FrameError struct {
	Reason string
	Err    error
}

func (e *FrameError) Error() string { return fmt.Sprintf("bad frame (%s): %v", e.Reason, e.Err) }
func (e *FrameError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrFrameTooLarge) true for oversized frames.
func (e *FrameError) Is(target error) bool {
	return e.Reason == "too_large" && target == ErrFrameTooLarge
}

func frameErr(reason, format string, args ...any) error {
	return &FrameError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// codec encodes and decodes frames under one MaxFrame. Safe for concurrent use.
type codec struct {
	maxFrame int64
	enc      *zstd.Encoder
	dec      *zstd.Decoder
	// inflate bounds the memory of decompressions running at once, across
	// all peers and streams, so a burst of small frames that each expand to
	// MaxFrame cannot exhaust memory.
	inflate *semaphore.Weighted
}

// inflateFrames is how many MaxFrame-sized decompressions may run at once.
const inflateFrames = 4

func newCodec(maxFrame int64) (*codec, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	// The decoder never holds more than maxFrame of output (DecodeAll fails
	// with ErrDecoderSizeExceeded instead) and never uses a window larger
	// than that, so a hostile frame cannot make us allocate more than the
	// limit we accept uncompressed anyway.
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderMaxMemory(uint64(maxFrame)),
		zstd.WithDecoderMaxWindow(uint64(max(maxFrame, zstd.MinWindowSize))),
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &codec{maxFrame: maxFrame, enc: enc, dec: dec, inflate: semaphore.NewWeighted(inflateFrames * maxFrame)}, nil
}

func (c *codec) close() { c.dec.Close() }

// appendFrame appends the frame of body to dst, compressing large bodies if
// compress (the peer announced capZstd).
func (c *codec) appendFrame(dst []byte, t frameType, body []byte, compress bool) ([]byte, error) {
	if int64(len(body)) > c.maxFrame {
		return dst, fmt.Errorf("%s of %d bytes, limit %d: %w", t, len(body), c.maxFrame, ErrFrameTooLarge)
	}
	flags := byte(0)
	if compress && len(body) > compressThreshold {
		z := c.enc.EncodeAll(body, make([]byte, 0, len(body)/2))
		if len(z) < len(body) {
			body, flags = z, flagZstd
		}
	}
	dst = append(dst, byte(t), flags)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...), nil
}

// writeFrame writes an uncompressed frame (HELLO: capabilities are not
// known yet).
func (c *codec) writeFrame(w io.Writer, t frameType, body []byte) error {
	b, err := c.appendFrame(make([]byte, 0, frameHeaderLen+len(body)), t, body, false)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// readFrame reads one frame. Memory: the body buffer grows with the bytes
// actually received (a length claim alone allocates nothing large; QUIC flow
// control bounds what a peer can send), and decompression output is exactly
// the size the zstd header declares, at most MaxFrame, with at most
// inflateFrames × MaxFrame decompressing at once.
func (c *codec) readFrame(r io.Reader) (frameType, []byte, error) {
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, frameErr("truncated", "frame header: %w", err)
		}
		return 0, nil, err // io.EOF or a stream error: no frame
	}
	t, flags, n := frameType(h[0]), h[1], binary.BigEndian.Uint32(h[2:])
	if t == 0 || t > maxFrameType {
		return 0, nil, frameErr("bad_type", "unknown frame type %d", h[0])
	}
	if flags&^flagZstd != 0 {
		return t, nil, frameErr("bad_flags", "unknown flags %#x in %s", flags, t)
	}
	if int64(n) > c.maxFrame {
		return t, nil, frameErr("too_large", "%s of %d bytes, limit %d", t, n, c.maxFrame)
	}
	body, err := readBody(r, int(n))
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return t, nil, frameErr("truncated", "%s body: %w", t, io.ErrUnexpectedEOF)
		}
		return t, nil, err
	}
	if flags&flagZstd != 0 {
		if body, err = c.decompress(t, body); err != nil {
			return t, nil, err
		}
	}
	return t, body, nil
}

// readBody reads n bytes, growing the buffer as they arrive.
func readBody(r io.Reader, n int) ([]byte, error) {
	const chunk = 64 << 10
	if n <= chunk {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	b := make([]byte, 0, chunk)
	for len(b) < n {
		if len(b) == cap(b) {
			b = append(b, make([]byte, min(cap(b), n-len(b)))...)[:len(b)]
		}
		m, err := r.Read(b[len(b):min(cap(b), n)])
		b = b[:len(b)+m]
		if err != nil && len(b) < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}

// decompress inflates a zstd body. The zstd frame must declare its content
// size; output is allocated to exactly that and the decoder may not write
// past it.
func (c *codec) decompress(t frameType, z []byte) ([]byte, error) {
	var zh zstd.Header
	if err := zh.Decode(z); err != nil {
		return nil, frameErr("zstd", "%s: header: %w", t, err)
	}
	if !zh.HasFCS || zh.Skippable {
		return nil, frameErr("zstd", "%s: zstd frame does not declare its size", t)
	}
	if zh.FrameContentSize > uint64(c.maxFrame) {
		return nil, frameErr("too_large", "%s decompresses to %d bytes, limit %d", t, zh.FrameContentSize, c.maxFrame)
	}
	size := int64(zh.FrameContentSize)
	w := max(size, 1)
	_ = c.inflate.Acquire(context.Background(), w) // cannot fail: no deadline, w ≤ capacity
	defer c.inflate.Release(w)
	out, err := c.dec.DecodeAll(z, make([]byte, 0, size))
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			return nil, frameErr("too_large", "%s decompresses beyond its declared %d bytes or limit %d", t, size, c.maxFrame)
		}
		return nil, frameErr("zstd", "%s: %w", t, err)
	}
	if int64(len(out)) != size {
		return nil, frameErr("zstd", "%s decompressed to %d bytes, header declared %d", t, len(out), size)
	}
	return out, nil
}

// Protocol versions spoken by this build. A peer is compatible when the
// ranges [MinVersion, Version] overlap; the higher common version is used.
const (
	protoVersion    uint16 = 1
	protoMinVersion uint16 = 1
)

// hello is the first message each way on a new connection.
type hello struct {
	MinVersion, Version uint16
	Site                string
	Instance            uuid.UUID // persisted in StateDir: changes when the site's state is wiped
	Boot                uint64    // random per process start: changes on every restart
	Caps                []string  // capability tokens, e.g. capZstd
}

// capZstd: the site decodes zstd-compressed frames. Every build so far does;
// the token lets a future build drop or replace the codec.
const capZstd = "zstd"

const (
	maxSiteName = 64
	maxCaps     = 32
	maxCapLen   = 64
)

func (h hello) append(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, h.MinVersion)
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = append(b, h.Instance[:]...)
	b = binary.BigEndian.AppendUint64(b, h.Boot)
	b = appendString(b, h.Site)
	b = binary.AppendUvarint(b, uint64(len(h.Caps)))
	for _, c := range h.Caps {
		b = appendString(b, c)
	}
	return b
}

func decodeHello(b []byte) (hello, error) {
	var h hello
	if len(b) < 2+2+16+8 {
		return h, frameErr("malformed", "hello of %d bytes is too short", len(b))
	}
	h.MinVersion = binary.BigEndian.Uint16(b)
	h.Version = binary.BigEndian.Uint16(b[2:])
	copy(h.Instance[:], b[4:20])
	h.Boot = binary.BigEndian.Uint64(b[20:])
	b = b[28:]
	var err error
	if h.Site, b, err = readString(b, maxSiteName); err != nil {
		return h, frameErr("malformed", "hello site: %w", err)
	}
	if err := checkSiteName(h.Site); err != nil {
		return h, frameErr("malformed", "hello: %w", err)
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxCaps {
		return h, frameErr("malformed", "hello capability count")
	}
	b = b[k:]
	for range n {
		var c string
		if c, b, err = readString(b, maxCapLen); err != nil {
			return h, frameErr("malformed", "hello capability: %w", err)
		}
		h.Caps = append(h.Caps, c)
	}
	if len(b) != 0 {
		return h, frameErr("malformed", "hello has %d trailing bytes", len(b))
	}
	if h.MinVersion > h.Version {
		return h, frameErr("malformed", "hello version range [%d, %d] is empty", h.MinVersion, h.Version)
	}
	return h, nil
}

// checkSiteName accepts names made of letters, digits, '.', '_' and '-'.
func checkSiteName(s string) error {
	if s == "" || len(s) > maxSiteName {
		return fmt.Errorf("site name of %d bytes, want 1..%d", len(s), maxSiteName)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("site name %q has character %q", s, r)
		}
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(b []byte, limit int) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return "", nil, errors.New("bad length")
	}
	if n > uint64(limit) || n > uint64(len(b)-k) {
		return "", nil, fmt.Errorf("length %d over limit %d or data left %d", n, limit, len(b)-k)
	}
	s := string(b[k : k+int(n)])
	if !utf8.ValidString(s) {
		return "", nil, errors.New("not UTF-8")
	}
	return s, b[k+int(n):], nil
}

// request is the body of frameRequest, frameNotify and frameStreamOpen.
// Timeout is the time the requester still waits (0: no deadline); it is
// relative so that clock skew between sites does not matter.
type request struct {
	Kind    Kind
	Timeout time.Duration
	Payload []byte
}

func (r request) append(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(r.Kind))
	b = binary.AppendUvarint(b, uint64(max(r.Timeout, 0)))
	return append(b, r.Payload...)
}

func decodeRequest(b []byte) (request, error) {
	var r request
	if len(b) < 3 {
		return r, frameErr("malformed", "request of %d bytes is too short", len(b))
	}
	r.Kind = Kind(binary.BigEndian.Uint16(b))
	if r.Kind == 0 {
		return r, frameErr("malformed", "request kind 0")
	}
	t, k := binary.Uvarint(b[2:])
	if k <= 0 || t > uint64(1<<63-1) {
		return r, frameErr("malformed", "request timeout")
	}
	r.Timeout = time.Duration(t)
	r.Payload = b[2+k:]
	return r, nil
}

// response is the body of frameResponse. When Status is not StatusOK the
// payload is the error text.
type response struct {
	Status  Status
	Payload []byte
}

func (r response) append(b []byte) []byte {
	return append(append(b, byte(r.Status)), r.Payload...)
}

func decodeResponse(b []byte) (response, error) {
	if len(b) < 1 {
		return response{}, frameErr("malformed", "empty response")
	}
	if Status(b[0]) > maxStatus {
		return response{}, frameErr("malformed", "response status %d", b[0])
	}
	return response{Status: Status(b[0]), Payload: b[1:]}, nil
}
