package coord

import (
	"bytes"
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
