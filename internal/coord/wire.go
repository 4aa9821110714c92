package coord

import (
	"bytes"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/txn"
	"github.com/sitesync/sitesync/internal/wirebuf"
	"github.com/sitesync/sitesync/notedbfast"
	"github.com/sitesync/sitesync/refdb"
)

// maxUpdates bounds the refs of one message: a push of every ref of a very
// large repository.
const maxUpdates = 1 << 20

// Update is one ref move of a write (refmove.Update).
type Update = refmove.Update

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
	Head    string `json:"head,omitempty"` // the branch HEAD points at; "": the site's default
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
	if err := checkTimeout(m.TimeoutMS); err != nil {
		return err
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

func (m *createMsg) check() error {
	if m.Head != "" {
		if err := checkHead(m.Head); err != nil {
			return err
		}
	}
	return git.ValidateName(m.Project)
}

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
// COMMIT-DELTA is a binary envelope (a JSON header cost more than the
// frame of a lone write) followed by a notedbfast frame as raw bytes:
//
//	byte flags: deltaPack, deltaProject, deltaTimeout, deltaSeq, deltaEntry
//	txn (appendTxn), [str project], [uvarint timeout ms], [uvarint seq],
//	[uvarint entry updates]
//	uvarint versions; per version:
//	  byte: site (versionSite*) | versionNamed
//	  named: uvarint k, the k-th update (over all the frame's deltas, or
//	    of the receiver's prepared entry with deltaEntry) names the ref
//	    and its new value is the version's value;
//	  else: ref name (notedbfast.AppendRefName), 20 bytes value
//	  uvarint version, [str site]
//	frame: the rest, possibly empty
//
// where str is uvarint length + bytes. The project is left out when the
// frame names it (its only project) or with deltaEntry (the receiver's
// entry names it); the site of a version is left out when it is the site
// that made the txn id (the origin, nearly always). The frame carries
// each write's txn and ref updates, so the header does not repeat them.
// Versions that name updates of a plain frame are resolved when the
// envelope is decoded; those that name updates of a frame compressed
// against the receiver's objects (notedbfast.EncodeBased) or of its
// prepared entry only the receiver can resolve (deltaHeader.resolve).
type deltaHeader struct {
	// From is the sending site, not on the wire (the transport names
	// it): a txn id it made goes without its site.
	From    string
	Txn     string // the batch: names the peer's journal entry and the refdb records of a grouped decision
	Project string
	// TimeoutMS (prepare) is how long the origin waits for votes.
	TimeoutMS int64
	// Pack (prepare) says a pack stream for Txn was sent: move it into
	// the repository before applying the frame.
	Pack bool
	// Versions (commit) are the refdb versions the batch created; none
	// means no write of the batch was decided: forget it.
	Versions []Version
	// Seq (commit) numbers the COMMIT-DELTAs of one origin and project
	// to one peer, from 1, in decision order; 0 means unnumbered. The
	// origin sends without waiting for the previous answer, and the peer
	// writes their objects in this order (a later batch may build on an
	// earlier one's).
	Seq uint64
	// Entry (commit), when not 0, says the receiver holds a prepared entry
	// for Txn of this many updates (it voted yes on every decided write of
	// the batch at the first asking): the versions name its updates, and
	// the project is the entry's (the envelope leaves it out).
	Entry int
	// Named (commit), when not nil, holds per version the index of the
	// update that gives its ref and value, in the receiver's prepared entry
	// (Entry) or over the deltas of a frame compressed against the
	// receiver's objects, or -1 when the version spells them out. Decoded,
	// a named version has no ref and value until resolve.
	Named []int
}

// Envelope flags.
const (
	deltaPack    = 1 << 0
	deltaProject = 1 << 1 // the project is spelled out
	deltaTimeout = 1 << 2
	deltaSeq     = 1 << 3
	deltaEntry   = 1 << 4 // versions name the updates of the receiver's prepared entry
	deltaFlags   = deltaPack | deltaProject | deltaTimeout | deltaSeq | deltaEntry
)

// Version flags: where its site comes from, and whether the frame names
// its ref and value.
const (
	versionNoSite  = 0
	versionTxnSite = 1 // the site part of the envelope's txn id
	versionSite    = 2 // spelled out
	versionSites   = 3
	versionNamed   = 1 << 2 // an update of the frame or entry names it
	versionFlags   = versionSites | versionNamed
)

// deltaMsg is a decoded delta envelope.
type deltaMsg struct {
	Header deltaHeader
	Frame  []byte // a notedbfast frame; empty in a COMMIT-DELTA for peers that hold the objects
	// updates are the frame's ref updates in order, when the sender knows
	// them (the writes it encoded): encodeDelta then names versions by
	// their place in the frame without decoding it. Not sent.
	updates []Update
}

// deltaFrameLimits bound the frames of delta messages (as decodeFrame).
var deltaFrameLimits = notedbfast.Limits{MaxDeltas: 2 * ndBatchWrites}

// encodeDelta writes a delta envelope. It fails only for a version whose
// value is not an object id, which the refdb never holds: sent as bytes it
// would read as the zero id, a deletion.
func encodeDelta(m deltaMsg) ([]byte, error) {
	h := m.Header
	var flags byte
	if h.Pack {
		flags |= deltaPack
	}
	var inFrame map[[2]string]int
	switch {
	case h.Entry > 0:
		flags |= deltaEntry
	case len(m.Frame) > 0:
		if ps, err := notedbfast.Projects(m.Frame); err != nil || len(ps) != 1 || ps[0] != h.Project {
			flags |= deltaProject
		}
		if len(h.Versions) > 0 && h.Named == nil {
			inFrame = frameIndex(m.Frame, m.updates)
		}
	default:
		flags |= deltaProject
	}
	if h.TimeoutMS != 0 {
		flags |= deltaTimeout
	}
	if h.Seq != 0 {
		flags |= deltaSeq
	}
	b := make([]byte, 0, 64+40*len(h.Versions)+len(m.Frame))
	b = append(b, flags)
	b = appendTxn(b, h.Txn, h.From)
	if flags&deltaProject != 0 {
		b = wirebuf.AppendString(b, h.Project)
	}
	if flags&deltaTimeout != 0 {
		b = binary.AppendUvarint(b, uint64(h.TimeoutMS))
	}
	if flags&deltaSeq != 0 {
		b = binary.AppendUvarint(b, h.Seq)
	}
	if flags&deltaEntry != 0 {
		b = binary.AppendUvarint(b, uint64(h.Entry))
	}
	site, _ := txnSite(h.Txn)
	b = binary.AppendUvarint(b, uint64(len(h.Versions)))
	for i, v := range h.Versions {
		vf := byte(versionSite)
		switch {
		case v.Site == "":
			vf = versionNoSite
		case v.Site == site:
			vf = versionTxnSite
		}
		k, ok := inFrame[[2]string{v.Ref, v.Value}]
		if i < len(h.Named) && h.Named[i] >= 0 {
			k, ok = h.Named[i], true
		}
		if ok {
			vf |= versionNamed
		}
		b = append(b, vf)
		if ok {
			b = binary.AppendUvarint(b, uint64(k))
		} else {
			b = notedbfast.AppendRefName(b, v.Ref)
			var id [20]byte
			if !git.IsID(v.Value) {
				return nil, fmt.Errorf("version of %s: %q is not an object id", v.Ref, v.Value)
			}
			_, _ = hex.Decode(id[:], []byte(v.Value))
			b = append(b, id[:]...)
		}
		b = binary.AppendUvarint(b, v.Version)
		if vf&versionSites == versionSite {
			b = wirebuf.AppendString(b, v.Site)
		}
	}
	return append(b, m.Frame...), nil
}

// decodeDelta parses a delta envelope from the site from strictly. The
// frame is decoded here only when versions refer to its updates;
// notedbfast.Codec.Decode reads it under its own limits either way.
func decodeDelta(b []byte, from string) (deltaMsg, error) {
	m, err := parseDelta(b, from)
	if err != nil {
		return deltaMsg{}, fmt.Errorf("malformed delta message: %w", err)
	}
	if err := m.Header.check(); err != nil {
		return deltaMsg{}, err
	}
	return m, nil
}

func parseDelta(b []byte, from string) (deltaMsg, error) {
	var m deltaMsg
	h := &m.Header
	h.From = from
	r := &wireReader{wirebuf.Reader{B: b}}
	flags := r.Byte("flags")
	if r.Err == nil && flags&^deltaFlags != 0 {
		return m, fmt.Errorf("unknown flags %#x", flags)
	}
	h.Pack = flags&deltaPack != 0
	h.Txn = r.txn(from)
	if flags&deltaProject != 0 {
		h.Project = r.str("project")
	}
	if flags&deltaTimeout != 0 {
		t := r.Uvarint("timeout")
		if r.Err == nil && (t == 0 || t > uint64(maxPrepareTimeout.Milliseconds())) {
			return m, fmt.Errorf("timeout of %d ms: want 1 to %d (%s)", t, maxPrepareTimeout.Milliseconds(), maxPrepareTimeout)
		}
		h.TimeoutMS = int64(t)
	}
	if flags&deltaSeq != 0 {
		h.Seq = r.Uvarint("seq")
		if r.Err == nil && h.Seq == 0 {
			return m, errors.New("seq 0 spelled out")
		}
	}
	if flags&deltaEntry != 0 {
		if flags&(deltaProject|deltaPack|deltaTimeout) != 0 {
			return m, fmt.Errorf("flags %#x with an entry", flags)
		}
		k := r.Uvarint("entry updates")
		if r.Err == nil && (k == 0 || k > maxUpdates) {
			return m, fmt.Errorf("entry of %d updates", k)
		}
		h.Entry = int(k)
	}
	n := r.Uvarint("versions")
	if r.Err != nil {
		return m, r.Err
	}
	if n > maxUpdates || n > uint64(len(r.B)/3) {
		return m, fmt.Errorf("%d versions in %d bytes", n, len(r.B))
	}
	var refs []namedRef
	site, compact := txnSite(h.Txn)
	for range n {
		var v Version
		vf := r.Byte("version flags")
		if r.Err != nil {
			return m, r.Err
		}
		if vf&^versionFlags != 0 || vf&versionSites == versionSites {
			return m, fmt.Errorf("unknown version flags %#x", vf)
		}
		if vf&versionNamed != 0 {
			k := r.Uvarint("update index")
			if r.Err == nil && k >= maxUpdates {
				return m, fmt.Errorf("version names update %d", k)
			}
			refs = append(refs, namedRef{at: len(h.Versions), k: k})
		} else {
			ref, k, err := notedbfast.ReadRefName(r.B)
			if err != nil && r.Err == nil {
				r.Err = err
			}
			r.B = r.B[k:]
			v.Ref = ref
			v.Value = hex.EncodeToString(r.Bytes(20, "value"))
		}
		v.Version = r.Uvarint("version")
		switch vf & versionSites {
		case versionTxnSite:
			if !compact {
				return m, errors.New("version names the site of a txn id that has none")
			}
			v.Site = site
		case versionSite:
			v.Site = r.str("site")
			if r.Err == nil && (v.Site == "" || v.Site == site) {
				return m, fmt.Errorf("site %q spelled out", v.Site)
			}
		}
		if r.Err != nil {
			return m, r.Err
		}
		h.Versions = append(h.Versions, v)
	}
	if r.Err != nil {
		return m, r.Err
	}
	if len(r.B) > 0 {
		m.Frame = r.B
	}
	if h.Entry > 0 {
		if m.Frame != nil {
			return m, errors.New("a frame with an entry")
		}
		if len(h.Versions) == 0 {
			return m, errors.New("an entry without versions")
		}
		h.Named = named(len(h.Versions), refs)
		return m, nil
	}
	if flags&deltaProject == 0 {
		if m.Frame == nil {
			return m, errors.New("no project and no frame to take it from")
		}
		ps, err := notedbfast.Projects(m.Frame)
		if err != nil {
			return m, err
		}
		if len(ps) != 1 {
			return m, fmt.Errorf("project left out of a frame of %d projects", len(ps))
		}
		h.Project = ps[0]
	} else if m.Frame != nil {
		if ps, err := notedbfast.Projects(m.Frame); err == nil && len(ps) == 1 && ps[0] == h.Project {
			return m, errors.New("project spelled out that the frame names")
		}
	}
	if len(refs) > 0 {
		if m.Frame == nil {
			return m, errors.New("versions refer to a frame that is absent")
		}
		if bases, err := notedbfast.BaseIDs(m.Frame); err != nil {
			return m, err
		} else if len(bases) > 0 {
			// Only the receiver, which holds the bases, reads the frame.
			h.Named = named(len(h.Versions), refs)
			return m, nil
		}
		ups, err := frameUpdates(m.Frame)
		if err != nil {
			return m, err
		}
		for _, f := range refs {
			if f.k >= uint64(len(ups)) {
				return m, fmt.Errorf("version refers to update %d of %d", f.k, len(ups))
			}
			h.Versions[f.at].Ref, h.Versions[f.at].Value = ups[f.k].Ref, ups[f.k].New
		}
	}
	return m, nil
}

// namedRef is a version (index into the header's versions) that names
// update k.
type namedRef struct {
	at int
	k  uint64
}

// named returns, for n versions of which refs are named, each one's
// index (-1: spelled out).
func named(n int, refs []namedRef) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = -1
	}
	for _, f := range refs {
		out[f.at] = int(f.k)
	}
	return out
}

func (h *deltaHeader) check() error {
	if h.Entry > 0 {
		// The project comes from the receiver's entry (resolve).
		if h.Project != "" {
			return errors.New("project with an entry")
		}
		if err := txn.Check(h.Txn); err != nil {
			return err
		}
	} else if err := checkWrite(h.Txn, h.Project); err != nil {
		return err
	}
	if h.TimeoutMS != 0 { // 0: no timeout sent (not a prepare)
		if err := checkTimeout(h.TimeoutMS); err != nil {
			return err
		}
	}
	if h.Named != nil && len(h.Named) != len(h.Versions) {
		return fmt.Errorf("%d names for %d versions", len(h.Named), len(h.Versions))
	}
	var spelled []Version
	for i, v := range h.Versions {
		if i >= len(h.Named) || h.Named[i] < 0 {
			spelled = append(spelled, v)
		}
		if err := checkSite(v.Site); err != nil {
			return err
		}
	}
	return checkVersions(spelled)
}

// resolve fills in the named versions from ups (the receiver's prepared
// entry's updates, or its based frame's over all deltas) and checks them.
func (h *deltaHeader) resolve(ups []Update) error {
	for i, k := range h.Named {
		if k < 0 {
			continue
		}
		if k >= len(ups) {
			return fmt.Errorf("version names update %d of %d", k, len(ups))
		}
		h.Versions[i].Ref, h.Versions[i].Value = ups[k].Ref, ups[k].New
	}
	h.Named = nil
	return checkVersions(h.Versions)
}

// frameUpdates returns the ref updates of a frame, over all its deltas in
// order.
func frameUpdates(frame []byte) ([]notedbfast.Update, error) {
	ds, err := notedbfast.Decode(frame, deltaFrameLimits)
	if err != nil {
		return nil, err
	}
	ups := []notedbfast.Update{}
	for _, d := range ds {
		ups = append(ups, d.Updates...)
	}
	return ups, nil
}

// frameIndex maps each (ref, new value) of a frame's updates to the index
// of its last update: from ups, the frame's updates as its sender encoded
// them, or else by decoding the frame; nil if the frame does not decode by
// itself (a frame compressed against the peer's objects,
// notedbfast.EncodeBased): the sender names its versions instead
// (deltaHeader.Named).
func frameIndex(frame []byte, ups []Update) map[[2]string]int {
	if ups == nil {
		fups, err := frameUpdates(frame)
		if err != nil {
			return nil
		}
		ups = fromFast(fups)
	}
	idx := make(map[[2]string]int, len(ups))
	for k, u := range ups {
		idx[[2]string{u.Ref, u.New}] = k
	}
	return idx
}

// appendTxn writes a txn id: one made by txn.New ("site-<hex ms>-<16
// base32hex>") as uvarint((len(site)+1)<<1|1) and site, or uvarint(1) if
// site is the sender's (from, not ""), then uvarint ms and the 10 random
// bytes; any other as uvarint(len<<1) and its bytes.
func appendTxn(b []byte, id, from string) []byte {
	if site, ms, rnd, ok := splitTxn(id); ok {
		if from != "" && site == from {
			b = binary.AppendUvarint(b, 1)
		} else {
			b = binary.AppendUvarint(b, uint64(len(site)+1)<<1|1)
			b = append(b, site...)
		}
		b = binary.AppendUvarint(b, ms)
		return append(b, rnd...)
	}
	b = binary.AppendUvarint(b, uint64(len(id))<<1)
	return append(b, id...)
}

var txnRandom = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// splitTxn takes apart a txn id of txn.New's form, if it is spelled
// exactly as txn.New would spell its parts.
func splitTxn(id string) (site string, ms uint64, rnd []byte, ok bool) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 || len(id)-i-1 != 16 {
		return "", 0, nil, false
	}
	j := strings.LastIndexByte(id[:i], '-')
	if j < 0 {
		return "", 0, nil, false
	}
	ms, err := strconv.ParseUint(id[j+1:i], 16, 64)
	if err != nil || strconv.FormatUint(ms, 16) != id[j+1:i] {
		return "", 0, nil, false
	}
	rnd, err = txnRandom.DecodeString(id[i+1:])
	if err != nil || len(rnd) != 10 || txnRandom.EncodeToString(rnd) != id[i+1:] {
		return "", 0, nil, false
	}
	return id[:j], ms, rnd, true
}

func joinTxn(site string, ms uint64, rnd []byte) string {
	return site + "-" + strconv.FormatUint(ms, 16) + "-" + txnRandom.EncodeToString(rnd)
}

// txnSite returns the site part of a txn id of txn.New's form.
func txnSite(id string) (string, bool) {
	site, _, _, ok := splitTxn(id)
	return site, ok
}

// wireReader consumes a binary envelope; the first error sticks.
type wireReader struct{ wirebuf.Reader }

// maxWireName bounds a txn, project or site name in an envelope.
const maxWireName = 4096

func (r *wireReader) str(what string) string { return r.String(what, maxWireName) }

// txn reads a txn id that from sent.
func (r *wireReader) txn(from string) string {
	v := r.Uvarint("txn")
	if v&1 == 0 {
		n := v >> 1
		if n > maxWireName {
			r.Fail("txn of %d bytes", n)
			return ""
		}
		id := string(r.Bytes(n, "txn"))
		if _, _, _, ok := splitTxn(id); ok && r.Err == nil {
			r.Fail("txn %q spelled out", id)
		}
		return id
	}
	var site string
	switch n := v >> 1; {
	case n == 0 && from == "":
		r.Fail("txn of the sender's site, which is unnamed")
		return ""
	case n == 0:
		site = from
	case n-1 > maxWireName:
		r.Fail("txn site of %d bytes", n-1)
		return ""
	default:
		site = string(r.Bytes(n-1, "txn site"))
		if r.Err == nil && from != "" && site == from {
			r.Fail("txn site %q of the sender spelled out", site)
		}
	}
	ms := r.Uvarint("txn time")
	rnd := r.Bytes(10, "txn random")
	if r.Err != nil {
		return ""
	}
	id := joinTxn(site, ms, rnd)
	if _, _, _, ok := splitTxn(id); !ok {
		r.Fail("txn %q does not read back", id)
	}
	return id
}

// deltaVotesMsg answers a PREPARE-DELTA: one vote per write of the frame,
// or, for a frame compressed against objects the peer lacks (it cannot
// read which writes the frame holds), those objects' ids: the origin asks
// again with a plain frame.
type deltaVotesMsg struct {
	Votes        []deltaVote `json:"votes"`
	MissingBases []string    `json:"missing_bases,omitempty"`
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
	if len(m.MissingBases) > maxUpdates {
		return fmt.Errorf("%d object ids exceed the limit of %d", len(m.MissingBases), maxUpdates)
	}
	for _, id := range m.MissingBases {
		if !git.IsID(id) {
			return fmt.Errorf("invalid object id %q", id)
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
