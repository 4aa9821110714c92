package transport

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadFramesFromPeer: an authenticated peer that sends malformed or
// oversized frames gets a clear error back, the frame is counted as
// rejected, and the connection keeps working.
func TestBadFramesFromPeer(t *testing.T) {
	dir := certDir(t, "a", "b")
	aAddr := freeAddr(t)
	a := newSite(t, siteConfig(t, dir, "a", aAddr, []Peer{{Name: "b", Addr: freeAddr(t)}}), nil)
	a.m.Handle(kindEcho, func(ctx context.Context, from string, p []byte) ([]byte, error) { return p, nil })

	// Pose as site b with a hand-driven quic-go client.
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "b.pem"), filepath.Join(dir, "b-key.pem"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, aAddr, &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, NextProtos: []string{ALPN}}, nil)
	require.NoError(t, err)
	defer qc.CloseWithError(0, "")
	c := testCodec(t, DefaultMaxFrame)
	hs, err := qc.OpenStreamSync(ctx)
	require.NoError(t, err)
	require.NoError(t, c.writeFrame(hs, frameHello, hello{MinVersion: 1, Version: 1, Site: "b", Instance: uuid.New(), Boot: 1}.append(nil)))
	require.NoError(t, hs.Close())
	typ, _, err := c.readFrame(hs)
	require.NoError(t, err)
	require.Equal(t, frameHello, typ)
	require.Eventually(t, func() bool { return connected(a.m, "b") }, 5*time.Second, 10*time.Millisecond)

	send := func(t *testing.T, raw []byte) response {
		t.Helper()
		str, err := qc.OpenStreamSync(ctx)
		require.NoError(t, err)
		_, err = str.Write(raw)
		require.NoError(t, err)
		_ = str.Close() // fails when a already stopped reading: fine
		typ, body, err := c.readFrame(str)
		require.NoError(t, err)
		require.Equal(t, frameResponse, typ)
		r, err := decodeResponse(body)
		require.NoError(t, err)
		return r
	}
	tests := []struct {
		name   string
		raw    []byte
		status Status
		text   string
	}{
		{name: "oversized claim", raw: rawFrame(frameRequest, 0, uint32(DefaultMaxFrame+1), nil), status: StatusTooLarge, text: "limit 16777216"},
		{name: "unknown frame type", raw: rawFrame(42, 0, 0, nil), status: StatusBadRequest, text: "unknown frame type 42"},
		{name: "kind 0", raw: rawFrame(frameRequest, 0, 3, []byte{0, 0, 0}), status: StatusBadRequest, text: "request kind 0"},
		{name: "response sent as request", raw: rawFrame(frameResponse, 0, 3, []byte{0, 1, 0}), status: StatusBadRequest, text: "response opens a stream"},
		{name: "valid request still served", raw: must(c.appendFrame(nil, frameRequest, request{Kind: kindEcho, Payload: []byte("ok")}.append(nil), true)), status: StatusOK, text: "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, tt.raw)
			assert.Equal(t, tt.status, r.Status)
			assert.Contains(t, string(r.Payload), tt.text)
		})
	}
	assert.NotEmpty(t, a.logs.lines(`"msg":"rejected frame"`, `"reason":"too_large"`))
	assert.True(t, connected(a.m, "b"))
}
