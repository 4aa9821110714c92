package coord

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/txn"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/transport"
)

// Message kinds on the mesh.
const (
	KindPack     transport.Kind = 1 // stream: a pack into a transaction's quarantine
	KindPrepare  transport.Kind = 2 // request: hold a write's objects, journal it, vote
	KindCommit   transport.Kind = 3 // request: a write is decided; apply it
	KindAbort    transport.Kind = 4 // request: a write failed; drop what it left
	KindFetch    transport.Kind = 5 // request: send me a pack of these objects
	KindCreate   transport.Kind = 6 // request: create a project's repository
	KindProjects transport.Kind = 7 // request: which projects do you hold
	// The NoteDb fast path (notedb.go): a batch of writes as one delta frame.
	KindPrepareDelta transport.Kind = 8 // request: apply a batch's objects, journal it, vote per write
	KindCommitDelta  transport.Kind = 9 // request: a batch is decided (or released); apply it
)

// maxUpdates bounds the refs of one message: a push of every ref of a very
// large repository.
const maxUpdates = 1 << 20

// Update is one ref move of a write.
type Update struct {
	Ref string `json:"ref"`
	Old string `json:"old"`
	New string `json:"new"`
}

// Version is a ref's value as the refdb decided it.
type Version struct {
	Ref     string `json:"ref"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
	Site    string `json:"site,omitempty"` // the site whose write it is
}

type prepareMsg struct {
	Txn     string   `json:"txn"`
	Project string   `json:"project"`
	Updates []Update `json:"updates"`
	// Pack says a pack stream for Txn was sent: wait for it before voting.
	Pack bool `json:"pack,omitempty"`
	// TimeoutMS is how long the origin waits for votes; the peer keeps the
	// prepared write at least that long plus a grace before aborting it.
	TimeoutMS int64 `json:"timeout_ms"`
}

// Votes.
const (
	voteYes     = "yes"
	voteNo      = "no"
	voteMissing = "missing" // objects are missing: send a pack and ask again
)

type voteMsg struct {
	Vote   string `json:"vote"`
	Reason string `json:"reason,omitempty"`
}

type commitMsg struct {
	Txn      string    `json:"txn"`
	Project  string    `json:"project"`
	Versions []Version `json:"versions"`
	Pack     bool      `json:"pack,omitempty"`
}

type abortMsg struct {
	Txn     string `json:"txn"`
	Project string `json:"project"`
}

type fetchMsg struct {
	Project string   `json:"project"`
	Txn     string   `json:"txn"` // the quarantine at the asking site
	Wants   []string `json:"wants"`
	Haves   []string `json:"haves,omitempty"`
}

type createMsg struct {
	Project string `json:"project"`
}

type projectsMsg struct {
	Projects []string `json:"projects"`
}

func encode(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// decode parses a message from a peer strictly (no unknown fields, nothing
// after it) and validates it: nothing from the network is trusted.
func decode[T any](b []byte, v *T, check func(*T) error) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed message: %w", err)
	}
	if dec.More() {
		return errors.New("malformed message: trailing data")
	}
	return check(v)
}

func (m *prepareMsg) check() error {
	if err := checkWrite(m.Txn, m.Project); err != nil {
		return err
	}
	if m.TimeoutMS < 0 {
		return fmt.Errorf("negative timeout %d", m.TimeoutMS)
	}
	return checkUpdates(m.Updates)
}

func (m *voteMsg) check() error {
	switch m.Vote {
	case voteYes, voteNo, voteMissing:
		return nil
	}
	return fmt.Errorf("unknown vote %q", m.Vote)
}

func (m *commitMsg) check() error {
	if err := checkWrite(m.Txn, m.Project); err != nil {
		return err
	}
	if len(m.Versions) > maxUpdates {
		return fmt.Errorf("%d refs exceed the limit of %d", len(m.Versions), maxUpdates)
	}
	for _, v := range m.Versions {
		if err := refdb.ValidateRef(v.Ref); err != nil {
			return err
		}
		if err := refdb.ValidateSHA(v.Value); err != nil {
			return err
		}
		if err := checkSite(v.Site); err != nil {
			return err
		}
	}
	return nil
}

// checkSite accepts a site name as the configuration allows them, or "".
func checkSite(s string) error {
	if len(s) > 64 {
		return fmt.Errorf("site name of %d bytes", len(s))
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("invalid site name %q", s)
		}
	}
	return nil
}

func (m *abortMsg) check() error { return checkWrite(m.Txn, m.Project) }

func (m *fetchMsg) check() error {
	if err := checkWrite(m.Txn, m.Project); err != nil {
		return err
	}
	if len(m.Wants)+len(m.Haves) > maxUpdates {
		return fmt.Errorf("%d objects exceed the limit of %d", len(m.Wants)+len(m.Haves), maxUpdates)
	}
	for _, id := range append(append([]string(nil), m.Wants...), m.Haves...) {
		if !git.IsID(id) {
			return fmt.Errorf("invalid object id %q", id)
		}
	}
	return nil
}

func (m *createMsg) check() error { return git.ValidateName(m.Project) }

func (m *projectsMsg) check() error {
	for _, p := range m.Projects {
		if err := git.ValidateName(p); err != nil {
			return err
		}
	}
	return nil
}

func checkWrite(id, project string) error {
	if err := txn.Check(id); err != nil {
		return err
	}
	return git.ValidateName(project)
}

func checkUpdates(ups []Update) error {
	if len(ups) > maxUpdates {
		return fmt.Errorf("%d updates exceed the limit of %d", len(ups), maxUpdates)
	}
	seen := make(map[string]bool, len(ups))
	for _, u := range ups {
		if err := refdb.ValidateRef(u.Ref); err != nil {
			return err
		}
		if err := refdb.ValidateSHA(u.Old); err != nil {
			return err
		}
		if err := refdb.ValidateSHA(u.New); err != nil {
			return err
		}
		if seen[u.Ref] {
			return fmt.Errorf("ref %q appears twice", u.Ref)
		}
		seen[u.Ref] = true
	}
	return nil
}

// The NoteDb fast path's messages (notedb.go). A PREPARE-DELTA or
// COMMIT-DELTA is an envelope: uvarint(len(header)), a JSON deltaHeader,
// then a notedbfast frame as raw bytes (it is zstd-compressed already;
// base64 inside JSON would cost a third more). The frame carries each
// write's txn and ref updates, so the header does not repeat them.
type deltaHeader struct {
	Txn     string `json:"txn"` // the batch: names the peer's journal entry and the refdb records of a grouped decision
	Project string `json:"project"`
	// TimeoutMS (prepare) is how long the origin waits for votes.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Pack (prepare) says a pack stream for Txn was sent: move it into
	// the repository before applying the frame.
	Pack bool `json:"pack,omitempty"`
	// Versions (commit) are the refdb versions the batch created; none
	// means no write of the batch was decided: forget it.
	Versions []Version `json:"versions,omitempty"`
}

// maxDeltaHeader bounds the JSON header of a delta envelope; the versions
// of a batch of 256 writes take a few tens of KiB.
const maxDeltaHeader = 4 << 20

// deltaMsg is a decoded delta envelope.
type deltaMsg struct {
	Header deltaHeader
	Frame  []byte // a notedbfast frame; empty in a COMMIT-DELTA for peers that hold the objects
}

func encodeDelta(m deltaMsg) []byte {
	h := encode(m.Header)
	b := binary.AppendUvarint(make([]byte, 0, len(h)+len(m.Frame)+4), uint64(len(h)))
	b = append(b, h...)
	return append(b, m.Frame...)
}

// decodeDelta parses a delta envelope strictly. The frame is not decoded
// here: notedbfast.Codec.Decode does that under its own limits.
func decodeDelta(b []byte) (deltaMsg, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return deltaMsg{}, errors.New("malformed delta message: bad header length")
	}
	if n > maxDeltaHeader || n > uint64(len(b)-k) {
		return deltaMsg{}, fmt.Errorf("malformed delta message: header of %d bytes in a message of %d", n, len(b))
	}
	var m deltaMsg
	if err := decode(b[k:k+int(n)], &m.Header, (*deltaHeader).check); err != nil {
		return deltaMsg{}, err
	}
	if rest := b[k+int(n):]; len(rest) > 0 {
		m.Frame = rest
	}
	return m, nil
}

func (h *deltaHeader) check() error {
	if err := checkWrite(h.Txn, h.Project); err != nil {
		return err
	}
	if h.TimeoutMS < 0 {
		return fmt.Errorf("negative timeout %d", h.TimeoutMS)
	}
	return checkVersions(h.Versions)
}

// deltaVotesMsg answers a PREPARE-DELTA: one vote per write of the frame.
type deltaVotesMsg struct {
	Votes []deltaVote `json:"votes"`
}

type deltaVote struct {
	Txn    string `json:"txn"` // the write
	Vote   string `json:"vote"`
	Reason string `json:"reason,omitempty"`
	// Missing (vote "missing") are objects the write needs that the peer
	// lacks; Haves are the peer's values of the write's refs, where a
	// chain of the missing objects may stop.
	Missing []string `json:"missing,omitempty"`
	Haves   []string `json:"haves,omitempty"`
}

func (m *deltaVotesMsg) check() error {
	if len(m.Votes) > maxUpdates {
		return fmt.Errorf("%d votes exceed the limit of %d", len(m.Votes), maxUpdates)
	}
	for _, v := range m.Votes {
		if err := txn.Check(v.Txn); err != nil {
			return err
		}
		if err := (&voteMsg{Vote: v.Vote}).check(); err != nil {
			return err
		}
		if len(v.Missing)+len(v.Haves) > maxUpdates {
			return fmt.Errorf("%d object ids exceed the limit of %d", len(v.Missing)+len(v.Haves), maxUpdates)
		}
		for _, id := range v.Missing {
			if !git.IsID(id) {
				return fmt.Errorf("invalid object id %q", id)
			}
		}
		for _, id := range v.Haves {
			if !git.IsID(id) {
				return fmt.Errorf("invalid object id %q", id)
			}
		}
	}
	return nil
}

func checkVersions(vs []Version) error {
	if len(vs) > maxUpdates {
		return fmt.Errorf("%d refs exceed the limit of %d", len(vs), maxUpdates)
	}
	for _, v := range vs {
		if err := refdb.ValidateRef(v.Ref); err != nil {
			return err
		}
		if err := refdb.ValidateSHA(v.Value); err != nil {
			return err
		}
	}
	return nil
}
