package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	kindEcho   Kind = 1
	kindFail   Kind = 2
	kindWait   Kind = 3
	kindNotify Kind = 4
	kindBulk   Kind = 5
	kindEarly  Kind = 6
	kindNone   Kind = 99
)

// TestRequests covers request/response semantics between two sites.
func TestRequests(t *testing.T) {
	sites := newCluster(t, []string{"a", "b"}, nil)
	a, b := sites["a"].m, sites["b"].m
	notified := make(chan string, 1)
	handlerCtxErr := make(chan error, 1)
	waiting := make(chan struct{}, 1)
	b.Handle(kindEcho, func(ctx context.Context, from string, p []byte) ([]byte, error) {
		return append([]byte(from+":"), p...), nil
	})
	b.Handle(kindFail, func(ctx context.Context, from string, p []byte) ([]byte, error) {
		return nil, fmt.Errorf("refs/heads/main changed at site b")
	})
	b.Handle(kindWait, func(ctx context.Context, from string, p []byte) ([]byte, error) {
		dl, ok := ctx.Deadline()
		if string(p) == "deadline" {
			return []byte(fmt.Sprint(ok && time.Until(dl) < 10*time.Second)), nil
		}
		waiting <- struct{}{}
		<-ctx.Done()
		handlerCtxErr <- ctx.Err()
		return nil, ctx.Err()
	})
	b.Handle(kindNotify, func(ctx context.Context, from string, p []byte) ([]byte, error) {
		notified <- from + ":" + string(p)
		return nil, nil
	})
	waitMesh(t, sites, 10*time.Second)
	ctx := context.Background()
	big := bytes.Repeat([]byte("refs/changes/01/1/meta "), 50_000) // ~1.1 MiB, compressible

	tests := []struct {
		name    string
		peer    string
		kind    Kind
		payload []byte
		ctx     func() (context.Context, context.CancelFunc)
		want    []byte
		wantErr func(*testing.T, error)
	}{
		{name: "echo", peer: "b", kind: kindEcho, payload: []byte("hi"), want: []byte("a:hi")},
		{name: "empty payload", peer: "b", kind: kindEcho, want: []byte("a:")},
		{name: "compressed large payload", peer: "b", kind: kindEcho, payload: big, want: append([]byte("a:"), big...)},
		{name: "handler error", peer: "b", kind: kindFail, wantErr: func(t *testing.T, err error) {
			var re *RemoteError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, "b", re.Peer)
			assert.Contains(t, err.Error(), "refs/heads/main changed at site b")
		}},
		{name: "no handler", peer: "b", kind: kindNone, wantErr: func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrNoHandler)
		}},
		{name: "unknown peer", peer: "z", kind: kindEcho, wantErr: func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrUnknownPeer)
		}},
		{name: "too large", peer: "b", kind: kindEcho, payload: make([]byte, DefaultMaxFrame+1), wantErr: func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrFrameTooLarge)
		}},
		{name: "deadline travels", peer: "b", kind: kindWait, payload: []byte("deadline"), want: []byte("true"),
			ctx: func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 5*time.Second) }},
		{name: "deadline ends both sides", peer: "b", kind: kindWait,
			ctx: func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 200*time.Millisecond) },
			wantErr: func(t *testing.T, err error) {
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				<-waiting
				select {
				case herr := <-handlerCtxErr:
					assert.Error(t, herr)
				case <-time.After(5 * time.Second):
					t.Fatal("handler ctx not ended")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, cancel := context.WithCancel(ctx)
			if tt.ctx != nil {
				c, cancel = tt.ctx()
			}
			defer cancel()
			got, err := a.Request(c, tt.peer, tt.kind, tt.payload)
			if tt.wantErr != nil {
				require.Error(t, err)
				tt.wantErr(t, err)
				return
			}
			require.NoError(t, err)
			assert.True(t, bytes.Equal(tt.want, got), "reply of %d bytes differs", len(got))
		})
	}

	t.Run("cancel ends remote handler", func(t *testing.T) {
		c, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { _, err := a.Request(c, "b", kindWait, nil); errc <- err }()
		<-waiting // the handler runs
		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)
		select {
		case herr := <-handlerCtxErr:
			assert.ErrorIs(t, herr, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Fatal("handler ctx not canceled")
		}
	})

	t.Run("notify", func(t *testing.T) {
		require.NoError(t, a.Notify(ctx, "b", kindNotify, []byte("ping")))
		select {
		case got := <-notified:
			assert.Equal(t, "a:ping", got)
		case <-time.After(5 * time.Second):
			t.Fatal("notification not delivered")
		}
	})
}

// TestStreams covers bulk streams: reply, handler error, early return, abort.
func TestStreams(t *testing.T) {
	sites := newCluster(t, []string{"a", "b"}, nil)
	a, b := sites["a"].m, sites["b"].m
	aborted := make(chan error, 1)
	started := make(chan struct{}, 1)
	b.HandleStream(kindBulk, func(ctx context.Context, from string, hdr []byte, body io.Reader) ([]byte, error) {
		if string(hdr) == "abort-me" {
			started <- struct{}{}
		}
		n, err := io.Copy(io.Discard, body)
		if err != nil {
			aborted <- err
			return nil, err
		}
		return fmt.Appendf(nil, "%s %s %d", from, hdr, n), nil
	})
	b.HandleStream(kindEarly, func(ctx context.Context, from string, hdr []byte, body io.Reader) ([]byte, error) {
		return nil, errors.New("pack rejected: bad header")
	})
	waitMesh(t, sites, 10*time.Second)
	ctx := context.Background()

	t.Run("body and reply", func(t *testing.T) {
		s, err := a.OpenStream(ctx, "b", kindBulk, []byte("pack-1"))
		require.NoError(t, err)
		chunk := bytes.Repeat([]byte{7}, 64<<10)
		for range 100 {
			_, err := s.Write(chunk)
			require.NoError(t, err)
		}
		reply, err := s.CloseAndWait(ctx)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("a pack-1 %d", 100*len(chunk)), string(reply))
	})
	t.Run("receiver returns early", func(t *testing.T) {
		s, err := a.OpenStream(ctx, "b", kindEarly, nil)
		require.NoError(t, err)
		chunk := make([]byte, 1<<20)
		var werr error
		for i := 0; i < 1000 && werr == nil; i++ {
			_, werr = s.Write(chunk)
		}
		require.ErrorIs(t, werr, ErrStreamAborted)
		_, err = s.CloseAndWait(ctx)
		var re *RemoteError
		require.ErrorAs(t, err, &re)
		assert.Contains(t, re.Msg, "pack rejected: bad header")
	})
	t.Run("abort", func(t *testing.T) {
		s, err := a.OpenStream(ctx, "b", kindBulk, []byte("abort-me"))
		require.NoError(t, err)
		_, err = s.Write([]byte("partial"))
		require.NoError(t, err)
		<-started
		s.Abort(errors.New("source failed"))
		select {
		case err := <-aborted:
			assert.ErrorIs(t, err, ErrStreamAborted)
		case <-time.After(5 * time.Second):
			t.Fatal("receiver did not see the abort")
		}
		_, err = s.CloseAndWait(ctx)
		assert.ErrorIs(t, err, ErrStreamAborted)
		_, err = s.Write([]byte("more"))
		assert.ErrorIs(t, err, ErrStreamAborted)
	})
	t.Run("ctx ends the stream", func(t *testing.T) {
		sctx, cancel := context.WithCancel(ctx)
		s, err := a.OpenStream(sctx, "b", kindBulk, []byte("abort-me"))
		require.NoError(t, err)
		_, err = s.Write([]byte("partial"))
		require.NoError(t, err)
		<-started
		cancel()
		select {
		case err := <-aborted:
			assert.ErrorIs(t, err, ErrStreamAborted)
		case <-time.After(5 * time.Second):
			t.Fatal("receiver did not see the cancellation")
		}
		_, err = s.Write([]byte("more"))
		assert.ErrorIs(t, err, context.Canceled)
		_, err = s.CloseAndWait(ctx)
		assert.ErrorIs(t, err, context.Canceled)
	})
	t.Run("no handler", func(t *testing.T) {
		s, err := a.OpenStream(ctx, "b", kindNone, nil)
		require.NoError(t, err)
		_, err = s.CloseAndWait(ctx)
		assert.ErrorIs(t, err, ErrNoHandler)
	})
}

// TestOneConnectionPerPair: both sides dial at once, exactly one connection
// per pair survives, on both sides the same one.
func TestOneConnectionPerPair(t *testing.T) {
	sites := newCluster(t, []string{"a", "b", "c"}, nil)
	waitMesh(t, sites, 10*time.Second)
	require.Eventually(t, func() bool {
		for _, s := range sites {
			if s.m.live.Load() != 2 {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "duplicate connections left")
	dialerOf := func(s *site, peer string) string {
		p := s.m.peers[peer]
		p.mu.Lock()
		defer p.mu.Unlock()
		require.Len(t, p.conns, 1, "site %s peer %s", s.cfg.Site, peer)
		return p.cur.dialer
	}
	for _, pair := range [][2]string{{"a", "b"}, {"a", "c"}, {"b", "c"}} {
		x, y := pair[0], pair[1]
		assert.Equal(t, dialerOf(sites[x], y), dialerOf(sites[y], x), "pair %s-%s uses different connections", x, y)
	}
	for _, s := range sites {
		// A healthy start logs no warnings, except dials that raced the
		// peer's listener coming up.
		for _, l := range s.logs.lines(`"level":"WARN"`) {
			if !strings.Contains(l, `"msg":"dial peer failed"`) {
				t.Errorf("site %s: unexpected warning: %s", s.cfg.Site, l)
			}
		}
		for _, p := range s.m.Peers() {
			assert.True(t, p.Connected)
			assert.Greater(t, p.RTT, time.Duration(0))
			assert.False(t, p.Since.IsZero())
			assert.Equal(t, sites[p.Name].m.InstanceID(), p.Instance)
			assert.True(t, strings.HasPrefix(p.Addr, "127.0.0.1:"))
		}
	}
}
