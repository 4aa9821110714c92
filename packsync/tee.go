package packsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sitesync/sitesync/transport"
)

// Tee limits. A peer's queue holds teeQueue chunks (each one read of the
// client's upload, at most a few tens of KiB): enough to ride out a hiccup of
// the link, small enough that memory stays flat for any pack size. A peer
// whose queue stays full for teeStall falls out of the tee, so a slow site
// never slows the client's push; it gets the objects another way.
const (
	teeQueue = 256
	teeStall = 2 * time.Second
)

// Tee copies the pack bytes a client uploads to the peer sites as they
// arrive. Writes never fail and never wait longer than teeStall on a peer:
// a peer that cannot keep up or goes away drops out, and Result says so.
type Tee struct {
	sends []*teeSend
	log   *slog.Logger
}

type teeSend struct {
	peer string
	ch   chan []byte
	quit chan struct{} // closed when the sender gives up
	once sync.Once
	done chan struct{} // closed when err is final
	err  error
}

// ErrTeeDropped means a peer fell out of a tee.
var ErrTeeDropped = errors.New("peer dropped from the pack tee")

// StartTee opens a pack stream to every peer for the quarantine named by
// hdr. ctx bounds the streams' whole life.
func StartTee(ctx context.Context, o Opener, kind transport.Kind, peers []string, hdr Header, log *slog.Logger) *Tee {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tee{log: log.With("component", "packsync")}
	header := EncodeHeader(hdr)
	for _, p := range peers {
		s := &teeSend{peer: p, ch: make(chan []byte, teeQueue), quit: make(chan struct{}), done: make(chan struct{})}
		t.sends = append(t.sends, s)
		go s.run(ctx, o, kind, header)
	}
	return t
}

func (s *teeSend) run(ctx context.Context, o Opener, kind transport.Kind, header []byte) {
	defer close(s.done)
	st, err := o.OpenStream(ctx, s.peer, kind, header)
	if err != nil {
		s.err = err
		s.stop()
		return
	}
	for {
		select {
		case chunk, ok := <-s.ch:
			if !ok {
				_, s.err = st.CloseAndWait(ctx)
				return
			}
			if _, err := st.Write(chunk); err != nil {
				// CloseAndWait carries the receiver's reason when it stopped early.
				if _, werr := st.CloseAndWait(ctx); werr != nil {
					err = werr
				}
				s.err = err
				s.stop()
				return
			}
		case <-s.quit:
			s.err = ErrTeeDropped
			st.Abort(s.err)
			return
		}
	}
}

func (s *teeSend) stop() { s.once.Do(func() { close(s.quit) }) }

// Write hands p to every peer still in the tee. It keeps no reference to p.
func (t *Tee) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	chunk := append([]byte(nil), p...)
	var timer *time.Timer
	for _, s := range t.sends {
		select {
		case s.ch <- chunk:
			continue
		case <-s.quit:
			continue
		default:
		}
		if timer == nil {
			timer = time.NewTimer(teeStall)
			defer timer.Stop()
		}
		select {
		case s.ch <- chunk:
		case <-s.quit:
		case <-timer.C:
			t.log.Warn("peer too slow for the pack tee; it will get the objects later", "peer", s.peer)
			s.stop()
		}
	}
	return len(p), nil
}

// Close ends the pack: every peer still in the tee finishes its stream.
func (t *Tee) Close() {
	for _, s := range t.sends {
		select {
		case <-s.quit:
		default:
			close(s.ch)
		}
	}
}

// Abort ends every stream without delivering the pack (the upload failed).
func (t *Tee) Abort() {
	for _, s := range t.sends {
		s.stop()
	}
}

// Result waits until the peer's stream has ended and returns nil if the
// peer holds the whole pack in its quarantine.
func (t *Tee) Result(ctx context.Context, peer string) error {
	for _, s := range t.sends {
		if s.peer != peer {
			continue
		}
		select {
		case <-s.done:
			return s.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("site %q: %w", peer, ErrNoPack)
}
