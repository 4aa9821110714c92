package packsync

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// A pack stream longer than the receiver's limit is refused with an error
// that names the limit, and leaves the quarantine empty; the same stream
// under a limit it fits goes in.
func TestReceiverPackLimit(t *testing.T) {
	env := gittest.Env(t)
	ctx := context.Background()
	origin, peer, base, tip := sites(t, env)
	body := pack(t, env, origin, false, tip, "^"+base)
	open := func(context.Context, string) (string, error) { return peer, nil }
	header := EncodeHeader(Header{Project: "p", Txn: "txn-1"})

	for _, tc := range []struct {
		name    string
		max     int64
		wantErr string
	}{
		{name: "one byte short", max: int64(len(body)) - 1, wantErr: "pack stream too large: more than"},
		{name: "far too small", max: 12, wantErr: "(mesh.max_pack)"},
		{name: "exactly its size", max: int64(len(body))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReceiver(open, tc.max, nil)
			_, err := r.Handle(ctx, "b", header, bytes.NewReader(body))
			q, cerr := Create(peer, "txn-1")
			require.NoError(t, cerr)
			defer q.Drop()
			packs, _ := filepath.Glob(filepath.Join(q.Dir(), "pack", "*"))
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrPackTooLarge)
				require.ErrorContains(t, err, tc.wantErr)
				require.ErrorIs(t, r.Wait(ctx, "txn-1"), ErrPackTooLarge, "a vote waiting for the pack hears why")
				require.Empty(t, packs, "nothing of a refused pack is kept")
				return
			}
			require.NoError(t, err)
			require.NoError(t, r.Wait(ctx, "txn-1"))
			missing, err := q.Missing(ctx, []string{tip})
			require.NoError(t, err)
			require.Empty(t, missing)
			require.NotEmpty(t, packs)
		})
	}
}

// stallReader hands out head, then blocks until its read deadline (or ctx
// ends): a pack stream whose sender went quiet.
type stallReader struct {
	head     []byte
	ctx      context.Context
	deadline chan struct{}
	once     sync.Once
}

func (s *stallReader) SetReadDeadline(time.Time) error {
	s.once.Do(func() { close(s.deadline) })
	return nil
}

func (s *stallReader) Read(p []byte) (int, error) {
	if len(s.head) > 0 {
		n := copy(p, s.head)
		s.head = s.head[n:]
		return n, nil
	}
	select {
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	case <-s.deadline:
		return 0, os.ErrDeadlineExceeded
	}
}

// Cancel cuts a pack stream in progress short and removes what it wrote,
// refuses a stream of the same transaction that arrives later, and does
// not wait for either; another transaction is not affected.
func TestReceiverCancel(t *testing.T) {
	env := gittest.Env(t)
	ctx := context.Background()
	origin, peer, base, tip := sites(t, env)
	body := pack(t, env, origin, false, tip, "^"+base)
	open := func(context.Context, string) (string, error) { return peer, nil }
	r := NewReceiver(open, 0, nil)

	// A stream that sent half its pack and went quiet.
	stall, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		_, err := r.Handle(ctx, "b", EncodeHeader(Header{Project: "p", Txn: "txn-1"}), &stallReader{head: body[:len(body)/2], ctx: stall, deadline: make(chan struct{})})
		done <- err
	}()
	q, err := Create(peer, "txn-1")
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, err := os.Stat(q.Dir()); return err == nil }, 10*time.Second, 5*time.Millisecond)

	start := time.Now()
	r.Cancel("txn-1")
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrCancelled)
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled stream still runs after 10s")
	}
	require.Less(t, time.Since(start), 10*time.Second)
	_, err = os.Stat(q.Dir())
	require.True(t, os.IsNotExist(err), "the cancelled stream's quarantine is still there: %v", err)

	// The same transaction's pack, arriving late, is refused and writes nothing.
	_, err = r.Handle(ctx, "b", EncodeHeader(Header{Project: "p", Txn: "txn-1"}), bytes.NewReader(body))
	require.ErrorIs(t, err, ErrCancelled)
	_, err = os.Stat(q.Dir())
	require.True(t, os.IsNotExist(err), "a late pack of a cancelled transaction made a quarantine")

	// Another transaction goes in as usual.
	_, err = r.Handle(ctx, "b", EncodeHeader(Header{Project: "p", Txn: "txn-2"}), bytes.NewReader(body))
	require.NoError(t, err)
	require.NoError(t, r.Wait(ctx, "txn-2"))
}
