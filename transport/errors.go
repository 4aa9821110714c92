package transport

import (
	"errors"
	"fmt"
)

var (
	// ErrUnknownPeer: the site name is not in Config.Peers.
	ErrUnknownPeer = errors.New("unknown peer")
	// ErrPeerUnavailable: there is no live connection to the peer, or it was
	// lost while the call was in flight (then the remote handler may or may
	// not have run). Retry later or wait for an EventUp.
	ErrPeerUnavailable = errors.New("peer unavailable")
	// ErrFrameTooLarge: a payload or header exceeds Config.MaxFrame (ours
	// when sending, the peer's when it refused it).
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrNoHandler: the peer has no handler registered for the kind.
	ErrNoHandler = errors.New("no handler for kind")
	// ErrStreamAborted: the sender of a bulk stream aborted it, or the
	// receiver stopped reading it.
	ErrStreamAborted = errors.New("stream aborted")
	// ErrIncompatibleVersion: the peer speaks no protocol version we do.
	ErrIncompatibleVersion = errors.New("incompatible protocol version")
)

// RemoteError is an error returned by the peer: its handler failed, or the
// peer refused the request. Msg is the peer's text.
type RemoteError struct {
	Peer string
	Kind Kind
	Code Status
	Msg  string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("site %q, kind %d: %s", e.Peer, e.Kind, e.Msg)
}

// Is makes errors.Is(err, ErrNoHandler) and errors.Is(err, ErrFrameTooLarge)
// work on refusals by the peer.
func (e *RemoteError) Is(target error) bool {
	switch e.Code {
	case StatusNoHandler:
		return target == ErrNoHandler
	case StatusTooLarge:
		return target == ErrFrameTooLarge
	}
	return false
}
