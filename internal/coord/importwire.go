package coord

import (
	"fmt"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/refdb"
)

// The IMPORT request (kind.Import) and its answer. One kind carries the
// three steps of an import at a placement peer, named by Op:
//
//   - check: the origin's refs summarised (count and refsDigest); the peer
//     answers what it holds: none, empty, identical or differs;
//   - compare: the origin's refs of one range [From, To); the peer answers
//     how its refs in that range differ (compareRefs);
//   - copy: the refdb now holds the project; the peer copies it from the
//     origin and answers copied once its refs are the refdb's.

// Import operations.
const (
	importCheck   = "check"
	importCompare = "compare"
	importCopy    = "copy"
)

// What a placement peer holds of a project being imported (check), and
// how its copy ends.
const (
	copyNone      = "none"      // no repository
	copyEmpty     = "empty"     // a repository without refs to import
	copyIdentical = "identical" // the same refs at the same values
	copyDiffers   = "differs"   // other refs: compare to find out how
	copyPartial   = "partial"   // some of the refs, at the imported values
	copyCompared  = "compared"  // the answer of a compare
	copyCopied    = "copied"    // the answer of a copy
)

type refValue struct {
	Ref   string `json:"ref"`
	Value string `json:"value"`
}

type importMsg struct {
	Project string `json:"project"`
	Op      string `json:"op"`
	// Refs and Digest (check) summarise the refs the origin imports.
	Refs   int    `json:"refs,omitempty"`
	Digest string `json:"digest,omitempty"`
	// From, To and Values (compare): the origin's refs in [From, To), in
	// ref order ("" bounds are open).
	From   string     `json:"from,omitempty"`
	To     string     `json:"to,omitempty"`
	Values []refValue `json:"values,omitempty"`
}

type importReplyMsg struct {
	State string `json:"state"`
	// Refs (check) is how many refs to import the peer holds; (copy) how
	// many refs it moved.
	Refs int `json:"refs,omitempty"`
	Difference
}

func (m *importMsg) check() error {
	if err := git.ValidateName(m.Project); err != nil {
		return err
	}
	switch m.Op {
	case importCheck:
		if !isDigest(m.Digest) {
			return fmt.Errorf("digest %q is not 64 lower-case hex characters", m.Digest)
		}
	case importCompare, importCopy:
		if m.Digest != "" {
			return fmt.Errorf("a digest with op %q", m.Op)
		}
	default:
		return fmt.Errorf("unknown import op %q", m.Op)
	}
	if m.Refs < 0 {
		return fmt.Errorf("negative count of refs %d", m.Refs)
	}
	if m.Op != importCompare && (m.From != "" || m.To != "" || len(m.Values) > 0) {
		return fmt.Errorf("a range of refs with op %q", m.Op)
	}
	for _, b := range []string{m.From, m.To} {
		if b != "" {
			if err := refdb.ValidateRef(b); err != nil {
				return err
			}
		}
	}
	if m.From != "" && m.To != "" && m.From >= m.To {
		return fmt.Errorf("empty range [%q, %q)", m.From, m.To)
	}
	if len(m.Values) > maxUpdates {
		return fmt.Errorf("%d refs exceed the limit of %d", len(m.Values), maxUpdates)
	}
	for i, v := range m.Values {
		if err := refdb.ValidateRef(v.Ref); err != nil {
			return err
		}
		if err := refdb.ValidateSHA(v.Value); err != nil {
			return err
		}
		if !inRange(v.Ref, m.From, m.To) {
			return fmt.Errorf("ref %q outside the range [%q, %q)", v.Ref, m.From, m.To)
		}
		if i > 0 && m.Values[i-1].Ref >= v.Ref {
			return fmt.Errorf("refs out of order at %q", v.Ref)
		}
	}
	if len(m.Values) == 0 {
		m.Values = nil
	}
	return nil
}

func (m *importReplyMsg) check() error {
	switch m.State {
	case copyNone, copyEmpty, copyIdentical, copyDiffers, copyCompared, copyCopied:
	default:
		return fmt.Errorf("unknown import state %q", m.State)
	}
	if m.Refs < 0 || m.Differ < 0 || m.Missing < 0 || m.Extra < 0 {
		return fmt.Errorf("negative count in an import answer")
	}
	if len(m.Examples) > importExamples {
		return fmt.Errorf("%d examples exceed the limit of %d", len(m.Examples), importExamples)
	}
	for _, e := range m.Examples {
		if err := refdb.ValidateRef(e.Ref); err != nil {
			return err
		}
		if err := refdb.ValidateSHA(e.Want); err != nil {
			return err
		}
		if err := refdb.ValidateSHA(e.Got); err != nil {
			return err
		}
	}
	if len(m.Examples) == 0 {
		m.Examples = nil
	}
	return nil
}

// isDigest says whether s is a refsDigest: 64 lower-case hex characters.
func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
