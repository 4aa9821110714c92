package packsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/txn"
	"github.com/sitesync/sitesync/transport"
)

// Header opens a pack stream: which project, and which transaction's
// quarantine the pack goes to.
type Header struct {
	Project string `json:"project"`
	Txn     string `json:"txn"`
}

// maxHeader bounds an encoded header.
const maxHeader = 4096

// EncodeHeader is the wire form of h.
func EncodeHeader(h Header) []byte {
	b, _ := json.Marshal(h)
	return b
}

// DecodeHeader parses a header from a peer. It checks the project name and
// the transaction id, so neither can name a path outside the repository.
func DecodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) > maxHeader {
		return h, fmt.Errorf("pack header of %d bytes exceeds %d", len(b), maxHeader)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return Header{}, fmt.Errorf("malformed pack header: %w", err)
	}
	if dec.More() {
		return Header{}, errors.New("malformed pack header: trailing data")
	}
	if err := git.ValidateName(h.Project); err != nil {
		return Header{}, fmt.Errorf("pack header: %w", err)
	}
	if err := txn.Check(h.Txn); err != nil {
		return Header{}, fmt.Errorf("pack header: %w", err)
	}
	return h, nil
}

// Opener opens bulk streams to peers; *transport.Mesh is one.
type Opener interface {
	OpenStream(ctx context.Context, peer string, kind transport.Kind, header []byte) (*transport.Stream, error)
}

// Ship sends peer a pack of the objects reachable from wants and not from
// haves, built by git pack-objects in the repository at dir, into the
// quarantine named by hdr. Haves the repository lacks are left out. Nothing
// is compressed beyond what the pack is; nothing is held whole in memory.
func Ship(ctx context.Context, o Opener, kind transport.Kind, peer, dir string, hdr Header, wants, haves []string) error {
	wants = nonZero(wants)
	if len(wants) == 0 {
		return nil
	}
	haves = nonZero(haves)
	if len(haves) > 0 {
		missing, err := git.MissingObjects(ctx, dir, "", haves)
		if err != nil {
			return fmt.Errorf("ship pack to %q: %w", peer, err)
		}
		haves = without(haves, missing)
	}
	s, err := o.OpenStream(ctx, peer, kind, EncodeHeader(hdr))
	if err != nil {
		return fmt.Errorf("ship pack to %q: %w", peer, err)
	}
	if err := git.PackObjects(ctx, dir, wants, haves, s); err != nil {
		s.Abort(err)
		return fmt.Errorf("ship pack to %q: %w", peer, err)
	}
	if _, err := s.CloseAndWait(ctx); err != nil {
		return fmt.Errorf("ship pack to %q: %w", peer, err)
	}
	return nil
}

func nonZero(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != refmove.ZeroID && id != "" {
			out = append(out, id)
		}
	}
	return out
}

func without(ids, drop []string) []string {
	if len(drop) == 0 {
		return ids
	}
	gone := make(map[string]bool, len(drop))
	for _, d := range drop {
		gone[d] = true
	}
	out := ids[:0:0]
	for _, id := range ids {
		if !gone[id] {
			out = append(out, id)
		}
	}
	return out
}

// Receiver takes pack streams from peers into quarantines and remembers,
// per transaction, how the last one ended, so a vote or a commit can wait
// for a pack still arriving. Safe for concurrent use.
type Receiver struct {
	open    func(ctx context.Context, project string) (dir string, err error)
	maxPack int64
	log     *slog.Logger

	mu        sync.Mutex
	arrivals  map[string]*arrival
	cancelled map[string]time.Time // txn → when Cancel was called
}

type arrival struct {
	done   chan struct{}
	err    error
	cancel context.CancelFunc // cuts the stream short
}

// cancelledFor is how long a cancelled transaction's packs are refused: far
// longer than a pack announced by a message can lag behind it.
const cancelledFor = 10 * time.Minute

// ErrCancelled is the outcome of a pack stream of a cancelled transaction.
var ErrCancelled = errors.New("the transaction was aborted")

// ErrNoPack means no pack stream arrived for a transaction.
var ErrNoPack = errors.New("no pack arrived for the transaction")

// ErrPackTooLarge is the outcome of a pack stream longer than the
// receiver's limit (mesh.max_pack). Nothing of it is kept.
var ErrPackTooLarge = errors.New("pack stream too large")

// DefaultMaxPack is the limit of a pack stream when none is configured
// (mesh.max_pack's default).
const DefaultMaxPack = 16 << 30

// NewReceiver returns a receiver that finds (or creates) a project's
// repository directory with open and refuses any pack stream longer than
// maxPack bytes (DefaultMaxPack if maxPack ≤ 0).
func NewReceiver(open func(ctx context.Context, project string) (string, error), maxPack int64, log *slog.Logger) *Receiver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if maxPack <= 0 {
		maxPack = DefaultMaxPack
	}
	return &Receiver{open: open, maxPack: maxPack, log: log.With("component", "packsync"), arrivals: make(map[string]*arrival)}
}

// Handle is the transport.StreamHandler of pack streams: it indexes the body
// into the quarantine of the header's transaction. A pack that fails (corrupt,
// incomplete, cut short) leaves the quarantine as it was before it.
func (r *Receiver) Handle(ctx context.Context, from string, header []byte, body io.Reader) ([]byte, error) {
	h, err := DecodeHeader(header)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := &arrival{done: make(chan struct{}), cancel: cancel}
	r.mu.Lock()
	_, dead := r.cancelled[h.Txn]
	prev := r.arrivals[h.Txn]
	if !dead {
		r.arrivals[h.Txn] = a
	}
	r.mu.Unlock()
	if dead {
		return nil, fmt.Errorf("pack for %s: %w", h.Txn, ErrCancelled)
	}
	if prev != nil {
		<-prev.done // one pack at a time per quarantine
	}
	// Cancel must not wait for a sender that went quiet: a blocked read of
	// the stream returns once ctx ends.
	if d, ok := body.(interface{ SetReadDeadline(time.Time) error }); ok {
		stop := context.AfterFunc(ctx, func() { _ = d.SetReadDeadline(time.Now()) })
		defer stop()
	}
	var q *Quarantine
	q, a.err = r.receive(ctx, h, body)
	r.mu.Lock()
	_, dead = r.cancelled[h.Txn]
	r.mu.Unlock()
	if dead {
		// Cancelled while it arrived: what it wrote goes with it.
		if q != nil {
			_ = q.Drop()
		}
		a.err = fmt.Errorf("pack for %s: %w", h.Txn, ErrCancelled)
	}
	close(a.done)
	if a.err != nil {
		r.log.Warn("pack refused", "peer", from, "project", h.Project, "txn", h.Txn, "error", a.err)
		return nil, a.err
	}
	return []byte("ok"), nil
}

func (r *Receiver) receive(ctx context.Context, h Header, body io.Reader) (*Quarantine, error) {
	dir, err := r.open(ctx, h.Project)
	if err != nil {
		return nil, err
	}
	q, err := Create(dir, h.Txn)
	if err != nil {
		return nil, err
	}
	capped := &cappedReader{r: body, left: r.maxPack}
	if err := q.IndexPack(ctx, capped); err != nil {
		if capped.over {
			return q, fmt.Errorf("%w: more than %d bytes for %s (mesh.max_pack)", ErrPackTooLarge, r.maxPack, h.Txn)
		}
		return q, err
	}
	return q, q.Sync()
}

// cappedReader reads at most left bytes from r; a byte more sets over and
// fails the read, so the pack's reader (index-pack) sees it cut short.
type cappedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			c.over = true
			return 0, ErrPackTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// Wait waits for the pack stream of txn in progress, if any, and returns how
// the last one ended: nil when it is in the quarantine, ErrNoPack when none
// came.
func (r *Receiver) Wait(ctx context.Context, txn string) error {
	r.mu.Lock()
	a := r.arrivals[txn]
	r.mu.Unlock()
	if a == nil {
		return ErrNoPack
	}
	select {
	case <-a.done:
		return a.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Cancel ends txn's packs without waiting for them: a stream of it in
// progress is cut short and whatever it wrote removed, and one that
// arrives later (for cancelledFor) is refused before it writes anything. A
// write that is aborted can then drop its quarantine at once.
func (r *Receiver) Cancel(txn string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancelled == nil {
		r.cancelled = make(map[string]time.Time)
	}
	for id, at := range r.cancelled {
		if now.Sub(at) > cancelledFor {
			delete(r.cancelled, id)
		}
	}
	r.cancelled[txn] = now
	if a := r.arrivals[txn]; a != nil {
		a.cancel()
		delete(r.arrivals, txn)
	}
}

// Forget drops what is known of txn's pack streams.
func (r *Receiver) Forget(txn string) {
	r.mu.Lock()
	delete(r.arrivals, txn)
	r.mu.Unlock()
}
