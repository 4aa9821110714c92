package coord

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
	"github.com/sitesync/sitesync/internal/txn"
	"github.com/sitesync/sitesync/internal/wirebuf"
	"github.com/sitesync/sitesync/notedbfast"
)

var (
	zero = strings.Repeat("0", 40)
	one  = strings.Repeat("1", 40)
	two  = strings.Repeat("2", 40)
)

func validMessages() []any {
	return []any{
		&prepareMsg{Txn: "a-1-x", Project: "tango/core", Updates: []Update{{Ref: "refs/heads/main", Old: one, New: two}, {Ref: "refs/tags/v1", Old: zero, New: one}}, Pack: true, TimeoutMS: 10000},
		&voteMsg{Vote: voteMissing, Reason: "3 objects missing"},
		&commitMsg{Txn: "a-1-x", Project: "p", Versions: []Version{{Ref: "refs/heads/main", Value: two, Version: 7}}},
		&abortMsg{Txn: "a-1-x", Project: "p"},
		&fetchMsg{Project: "p", Txn: "b-2-y", Wants: []string{one}, Haves: []string{two}},
		&createMsg{Project: "a/b/c"},
		&projectsMsg{Projects: []string{"a", "b/c"}},
		&deltaVotesMsg{Votes: []deltaVote{{Txn: "a-1-x", Vote: voteYes}, {Txn: "a-1-y", Vote: voteMissing, Reason: "objects missing", Missing: []string{one}, Haves: []string{two}}}},
		&deltaVotesMsg{MissingBases: []string{one, two}},
		&importMsg{Project: "tango/core", Op: importCheck, Refs: 243, Digest: strings.Repeat("ab", 32)},
		&importMsg{Project: "p", Op: importCompare, From: "refs/heads/a", To: "refs/tags/v1", Values: []refValue{{Ref: "refs/heads/a", Value: one}, {Ref: "refs/heads/b", Value: two}}},
		&importMsg{Project: "p", Op: importCopy},
		&importReplyMsg{State: copyIdentical, Refs: 7},
		&importReplyMsg{State: copyCompared, Difference: Difference{Differ: 1, Missing: 2, Extra: 3, Examples: []RefDiff{{Ref: "refs/heads/a", Want: one, Got: two}, {Ref: "refs/heads/z", Want: zero, Got: one}}}},
	}
}

// decodeAs decodes b as a message of the same type as like.
func decodeAs(like any, b []byte) (any, error) {
	switch like.(type) {
	case *prepareMsg:
		var m prepareMsg
		return &m, decode(b, &m, (*prepareMsg).check)
	case *voteMsg:
		var m voteMsg
		return &m, decode(b, &m, (*voteMsg).check)
	case *commitMsg:
		var m commitMsg
		return &m, decode(b, &m, (*commitMsg).check)
	case *abortMsg:
		var m abortMsg
		return &m, decode(b, &m, (*abortMsg).check)
	case *fetchMsg:
		var m fetchMsg
		return &m, decode(b, &m, (*fetchMsg).check)
	case *createMsg:
		var m createMsg
		return &m, decode(b, &m, (*createMsg).check)
	case *projectsMsg:
		var m projectsMsg
		return &m, decode(b, &m, (*projectsMsg).check)
	case *deltaVotesMsg:
		var m deltaVotesMsg
		return &m, decode(b, &m, (*deltaVotesMsg).check)
	case *importMsg:
		var m importMsg
		return &m, decode(b, &m, (*importMsg).check)
	case *importReplyMsg:
		var m importReplyMsg
		return &m, decode(b, &m, (*importReplyMsg).check)
	}
	panic("unknown message type")
}

func TestWireRoundTrip(t *testing.T) {
	for _, m := range validMessages() {
		got, err := decodeAs(m, encode(m))
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%T round trip: got %+v want %+v", m, got, m)
		}
	}
}

func TestWireRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		like any
		in   string
		want string
	}{
		{"unknown field", &abortMsg{}, `{"txn":"a","project":"p","x":1}`, "unknown field"},
		{"trailing data", &abortMsg{}, `{"txn":"a","project":"p"} {}`, "trailing data"},
		{"path escape", &createMsg{}, `{"project":"../etc"}`, "project"},
		{"bad txn", &abortMsg{}, `{"txn":"../x","project":"p"}`, "invalid transaction id"},
		{"bad ref", &prepareMsg{}, `{"txn":"a","project":"p","updates":[{"ref":"refs/heads/a b","old":"` + zero + `","new":"` + one + `"}],"timeout_ms":1}`, "ref"},
		{"ref twice", &prepareMsg{}, `{"txn":"a","project":"p","updates":[{"ref":"refs/x","old":"` + zero + `","new":"` + one + `"},{"ref":"refs/x","old":"` + zero + `","new":"` + one + `"}],"timeout_ms":1}`, "appears twice"},
		{"short sha", &commitMsg{}, `{"txn":"a","project":"p","versions":[{"ref":"refs/x","value":"abc","version":1}]}`, "40 hex"},
		{"bad vote", &voteMsg{}, `{"vote":"maybe"}`, "unknown vote"},
		{"bad want", &fetchMsg{}, `{"project":"p","txn":"a","wants":["HEAD"]}`, "invalid object id"},
		{"negative timeout", &prepareMsg{}, `{"txn":"a","project":"p","updates":[],"timeout_ms":-1}`, "timeout of -1 ms: want 1 to 600000 (10m0s)"},
		{"zero timeout", &prepareMsg{}, `{"txn":"a","project":"p","updates":[],"timeout_ms":0}`, "timeout of 0 ms"},
		{"no timeout", &prepareMsg{}, `{"txn":"a","project":"p","updates":[]}`, "timeout of 0 ms"},
		{"timeout past the bound", &prepareMsg{}, `{"txn":"a","project":"p","updates":[],"timeout_ms":600001}`, "timeout of 600001 ms: want 1 to 600000"},
		{"timeout 10^12 ms", &prepareMsg{}, `{"txn":"a","project":"p","updates":[],"timeout_ms":1000000000000}`, "timeout of 1000000000000 ms"},
		{"timeout 2^62 ms", &prepareMsg{}, `{"txn":"a","project":"p","updates":[],"timeout_ms":4611686018427387904}`, "timeout of 4611686018427387904 ms"},
		{"timeout past int64", &prepareMsg{}, `{"txn":"a","project":"p","updates":[],"timeout_ms":9223372036854775808}`, "malformed message"},
		{"not json", &voteMsg{}, "\x00\x01", "malformed message"},
		{"import op", &importMsg{}, `{"project":"p","op":"merge"}`, "unknown import op"},
		{"import digest", &importMsg{}, `{"project":"p","op":"check","digest":"XY"}`, "digest"},
		{"import range order", &importMsg{}, `{"project":"p","op":"compare","values":[{"ref":"refs/b","value":"` + one + `"},{"ref":"refs/a","value":"` + one + `"}]}`, "out of order"},
		{"import outside range", &importMsg{}, `{"project":"p","op":"compare","from":"refs/m","values":[{"ref":"refs/a","value":"` + one + `"}]}`, "outside the range"},
		{"import range with copy", &importMsg{}, `{"project":"p","op":"copy","from":"refs/a"}`, "a range of refs"},
		{"import state", &importReplyMsg{}, `{"state":"merged"}`, "unknown import state"},
		{"import count", &importReplyMsg{}, `{"state":"compared","differ":-1}`, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeAs(tc.like, []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzDecode feeds hostile bytes to every decoder of peer messages: each
// either refuses with an error or yields a message that survives a round
// trip unchanged.
func FuzzDecode(f *testing.F) {
	msgs := validMessages()
	for i, m := range msgs {
		f.Add(uint8(i), encode(m))
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		like := msgs[int(kind)%len(msgs)]
		m, err := decodeAs(like, b)
		if err != nil {
			return
		}
		again, err := decodeAs(like, encode(m))
		if err != nil {
			t.Fatalf("re-decoding %T %+v: %v", m, m, err)
		}
		// JSON's omitempty makes an empty list and no list one encoding:
		// what must hold is that a decoded message encodes to itself.
		if first, second := encode(m), encode(again); !bytes.Equal(first, second) {
			t.Fatalf("round trip changed %T: %s → %s", m, first, second)
		}
	})
}

// env builds a binary delta envelope from its parts.
func env(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case byte:
			b = append(b, p)
		case int:
			b = binary.AppendUvarint(b, uint64(p))
		case string: // a str
			b = wirebuf.AppendString(b, p)
		case []byte: // raw bytes
			b = append(b, p...)
		}
	}
	return b
}

type deltaReject struct {
	name string
	in   []byte
	want string
	from string // the sender
}

// deltaRejects are hostile delta envelopes and the error each must get.
func deltaRejects(tb testing.TB) []deltaReject {
	tb.Helper()
	lit := func(id string) []byte { return appendTxn(nil, id, "") }
	g := "b-19a2b3c4d5e-0123456789abcdev"
	frame := validDeltaMsgs(tb)[0].Frame
	based := validDeltaMsgs(tb)[13].Frame
	oldFrame := append([]byte("sndb\x01"), frame[1:]...)
	val := bytes.Repeat([]byte{1}, 20)
	return []deltaReject{
		{"empty", nil, "truncated at flags", ""},
		{"unknown flags", env(byte(0x80)), "unknown flags", ""},
		{"truncated txn", env(byte(deltaProject)), "truncated at txn", ""},
		{"txn past the end", env(byte(deltaProject), 40), "truncated at txn", ""},
		{"bad txn", env(byte(deltaProject), lit("a/b"), "p", 0), "invalid transaction id", ""},
		{"txn spelled out", env(byte(deltaProject), 2*len(g), []byte(g), "p", 0), "spelled out", ""},
		{"path escape", env(byte(deltaProject), lit("a"), "../p", 0), "project", ""},
		{"zero timeout", env(byte(deltaProject|deltaTimeout), lit("a"), "p", 0, 0), "timeout of 0 ms", ""},
		{"huge timeout", env(byte(deltaProject|deltaTimeout), lit("a"), "p", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 0), "timeout of 18446744073709551615 ms", ""},
		{"timeout 2^62", env(byte(deltaProject|deltaTimeout), lit("a"), "p", 1<<62, 0), "timeout of 4611686018427387904 ms: want 1 to 600000", ""},
		{"timeout 10^12", env(byte(deltaProject|deltaTimeout), lit("a"), "p", 1_000_000_000_000, 0), "timeout of 1000000000000 ms", ""},
		{"timeout past the bound", env(byte(deltaProject|deltaTimeout), lit("a"), "p", 600_001, 0), "timeout of 600001 ms", ""},
		{"versions past the end", env(byte(deltaProject), lit("a"), "p", 1000), "versions in", ""},
		{"seq 0", env(byte(deltaProject|deltaSeq), lit("a"), "p", 0, 0), "seq 0", ""},
		{"truncated seq", env(byte(deltaProject|deltaSeq), lit("a"), "p"), "truncated at seq", ""},
		{"version flags", env(byte(deltaProject), lit("a"), "p", 1, byte(0x40), 0, 0, 0), "unknown version flags", ""},
		{"site of a txn without one", env(byte(deltaProject), lit("a"), "p", 1, byte(versionTxnSite), notedbfast.AppendRefName(nil, "refs/x"), val, 1), "has none", ""},
		{"site spelled out", env(byte(deltaProject), lit(g), "p", 1, byte(versionSite), notedbfast.AppendRefName(nil, "refs/x"), val, 1, "b"), "spelled out", ""},
		{"bad site", env(byte(deltaProject), lit("a"), "p", 1, byte(versionSite), notedbfast.AppendRefName(nil, "refs/x"), val, 1, "A B"), "invalid site name", ""},
		{"bad ref", env(byte(deltaProject), lit("a"), "p", 1, byte(0), notedbfast.AppendRefName(nil, "refs/x y"), val, 1), "refs/x y", ""},
		{"truncated value", env(byte(deltaProject), lit("a"), "p", 1, byte(0), notedbfast.AppendRefName(nil, "refs/x"), val[:5]), "truncated", ""},
		{"ref in an absent frame", env(byte(deltaProject), lit("a"), "p", 1, byte(versionNamed), 0, 1), "absent", ""},
		{"ref past the frame's updates", env(byte(0), lit("a"), 1, byte(versionNamed), 5, 1, frame), "update 5 of 1", ""},
		{"no project, no frame", env(byte(0), lit("a"), 0), "no project and no frame", ""},
		{"project the frame names", env(byte(deltaProject), lit("a"), "p", 0, frame), "spelled out", ""},
		{"old frame", env(byte(0), lit("a"), 0, oldFrame), "unsupported delta format version", ""},
		{"not a frame", env(byte(0), lit("a"), 0, []byte("PACK")), "not a delta frame", ""},
		{"entry and project", env(byte(deltaEntry|deltaProject), lit("a"), "p", 1, 1, byte(versionNamed), 0, 1), "with an entry", ""},
		{"entry and timeout", env(byte(deltaEntry|deltaTimeout), lit("a"), 5, 1, 1, byte(versionNamed), 0, 1), "with an entry", ""},
		{"entry of 0", env(byte(deltaEntry), lit("a"), 0, 1, byte(versionNamed), 0, 1), "entry of 0 updates", ""},
		{"truncated entry", env(byte(deltaEntry), lit("a")), "truncated at entry", ""},
		{"entry and a frame", env(byte(deltaEntry), lit("a"), 2, 1, byte(versionNamed), 0, 1, frame), "a frame with an entry", ""},
		{"entry without versions", env(byte(deltaEntry), lit("a"), 2, 0), "an entry without versions", ""},
		{"huge update index", env(byte(deltaEntry), lit("a"), 2, 1, byte(versionNamed), []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 1), "version names update", ""},
		{"entry bad txn", env(byte(deltaEntry), lit("a/b"), 2, 1, byte(versionNamed), 0, 1), "invalid transaction id", ""},
		{"entry, spelled bad ref", env(byte(deltaEntry), lit("a"), 2, 1, byte(0), notedbfast.AppendRefName(nil, "refs/x y"), val, 1), "refs/x y", ""},
		{"sender's site, no sender", env(byte(deltaProject), appendTxn(nil, g, "b"), "p", 0), "unnamed", ""},
		{"sender's site spelled out", env(byte(deltaProject), lit(g), "p", 0), "of the sender spelled out", "b"},
		{"named in a cut based frame", env(byte(0), lit("a"), 1, byte(versionNamed), 0, 1, based[:10]), "header", ""},
	}
}

func TestTxnCompact(t *testing.T) {
	for _, tc := range []struct {
		name    string
		id      string
		compact bool
	}{
		{"txn.New", txn.New("us-east", time.UnixMilli(1_750_000_000_000)), true},
		{"site with dashes", txn.New("eu-west-2", time.UnixMilli(1)), true},
		{"short", "a-1-x", false},
		{"leading zero", "a-01-0123456789abcdev", false},
		{"upper case hex", "a-1F-0123456789abcdev", false},
		{"out of alphabet", "a-1f-0123456789abcdez", false},
		{"no site", "-1f-0123456789abcdev", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := appendTxn(nil, tc.id, "")
			r := &wireReader{wirebuf.Reader{B: b}}
			require.Equal(t, tc.id, r.txn(""))
			require.NoError(t, r.Err)
			require.Empty(t, r.B)
			site, ok := txnSite(tc.id)
			require.Equal(t, tc.compact, ok)
			if tc.compact {
				require.Less(t, len(b), len(tc.id))
			}
			if site != "" {
				// Sent by the site that made it: without the site.
				short := appendTxn(nil, tc.id, site)
				require.Len(t, short, len(b)-len(site))
				r := &wireReader{wirebuf.Reader{B: short}}
				require.Equal(t, tc.id, r.txn(site))
				require.NoError(t, r.Err)
			}
		})
	}
}

var wireCorpus = flag.String("corpus", "", "a git bundle of a real Gerrit repository (e.g. /work/shared/corpus/plugins_high-availability.bundle): TestDeltaWireSize measures its meta history")

// requestOverhead is what the transport adds to each request body: frame
// header (6), kind (2), relative timeout as a uvarint of nanoseconds (5).
const requestOverhead = 13

// loneWire is the size of what the origin sends one peer for a lone
// write: in quorum mode its PREPARE-DELTA (header + frame) and its
// COMMIT-DELTA (versions named in the peer's prepared entry); in async
// mode one COMMIT-DELTA with the frame (versions named in it). The frame
// is compressed against the objects the write's refs move from, as the
// coordinator sends batches of up to ndBasedWrites writes. Each request
// adds the transport's framing. plain* are the same messages with a plain
// frame and versions spelled out (what was sent before based frames and
// entries).
type loneWire struct {
	raw, prepHeader, frame, commit, async int
	plainFrame, plainCommit, plainAsync   int
}

func (w loneWire) total() int      { return w.prepHeader + w.frame + w.commit + 2*requestOverhead }
func (w loneWire) asyncTotal() int { return w.async + requestOverhead }
func (w loneWire) plainTotal() int {
	return w.prepHeader + w.plainFrame + w.plainCommit + 2*requestOverhead
}
func (w loneWire) plainAsyncTotal() int { return w.plainAsync + requestOverhead }

// measureLone encodes the messages of a lone write d (the k-th update of
// its ref, numbered k among the origin's COMMIT-DELTAs to the peer), and
// checks that a peer holding r's objects reads them back.
func measureLone(tb testing.TB, c *Coordinator, d notedbfast.Delta, k uint64, r notedbfast.ObjectReader) loneWire {
	tb.Helper()
	ctx := context.Background()
	now := time.UnixMilli(1_750_000_000_000)
	d.Txn = txn.New("us-east", now)
	g := txn.New("us-east", now.Add(time.Millisecond))
	plain, err := c.nd.codec.Encode(d)
	require.NoError(tb, err)
	frame, based, err := c.ndFrame(ctx, r, []notedbfast.Delta{d})
	require.NoError(tb, err)
	ups := fromFast(d.Updates)
	var vs []Version
	for _, u := range ups {
		vs = append(vs, Version{Ref: u.Ref, Value: u.New, Version: k, Site: "us-east"})
	}
	prep := mustEncodeDelta(tb, deltaMsg{Header: deltaHeader{From: "us-east", Txn: g, Project: d.Project, TimeoutMS: 10000}, Frame: frame})
	commit := mustEncodeDelta(tb, deltaMsg{Header: deltaHeader{From: "us-east", Txn: g, Versions: vs, Seq: k, Entry: len(ups), Named: nameVersions(vs, ups)}})
	am := deltaMsg{Header: deltaHeader{From: "us-east", Txn: g, Project: d.Project, Versions: vs, Seq: k}, Frame: frame}
	if based {
		am.Header.Named = nameVersions(vs, ups)
	}
	async := mustEncodeDelta(tb, am)
	plainCommit := mustEncodeDelta(tb, deltaMsg{Header: deltaHeader{From: "us-east", Txn: g, Project: d.Project, Versions: vs, Seq: k}})
	plainAsync := mustEncodeDelta(tb, deltaMsg{Header: deltaHeader{From: "us-east", Txn: g, Project: d.Project, Versions: vs, Seq: k}, Frame: plain})

	// The peer reads them back.
	read := func(ids []string) ([]notedbfast.Object, error) {
		var out []notedbfast.Object
		for _, id := range ids {
			o, err := r.Object(ctx, id)
			if err != nil {
				return nil, err
			}
			t, _ := notedbfast.ParseObjectType(o.Type)
			out = append(out, notedbfast.Object{Type: t, ID: id, Data: o.Data})
		}
		return out, nil
	}
	for _, b := range [][]byte{prep, async, plainAsync} {
		m, err := decodeDelta(b, "us-east")
		require.NoError(tb, err)
		got, err := c.nd.codec.DecodeBased(m.Frame, deltaFrameLimits, read)
		require.NoError(tb, err)
		require.Equal(tb, d.Updates, got[0].Updates)
		if m.Header.Named != nil {
			require.NoError(tb, m.Header.resolve(fromFast(got[0].Updates)))
		}
		if len(vs) > 0 && m.Header.TimeoutMS == 0 {
			require.Equal(tb, vs, m.Header.Versions)
		}
	}
	m, err := decodeDelta(commit, "us-east")
	require.NoError(tb, err)
	require.NoError(tb, m.Header.resolve(ups))
	require.Equal(tb, vs, m.Header.Versions)
	return loneWire{raw: int(d.RawBytes()), prepHeader: len(prep) - len(frame), frame: len(frame), commit: len(commit), async: len(async),
		plainFrame: len(plain), plainCommit: len(plainCommit), plainAsync: len(plainAsync)}
}

func summarize(tb testing.TB, what string, ws []loneWire) (quorum, async float64) {
	tb.Helper()
	ratio := func(f func(loneWire) int) float64 {
		r := make([]float64, len(ws))
		for i, w := range ws {
			r[i] = float64(f(w)) / float64(w.raw)
		}
		slices.Sort(r)
		return r[len(r)/2]
	}
	mid := func(f func(loneWire) int) int {
		r := make([]int, len(ws))
		for i, w := range ws {
			r[i] = f(w)
		}
		slices.Sort(r)
		return r[len(r)/2]
	}
	quorum, async = ratio(loneWire.total), ratio(loneWire.asyncTotal)
	defer tb.Logf("%s: with plain frames and versions spelled out: frame %d B (%.3f of raw), commit %d B; quorum %.3f, async %.3f of raw",
		what, mid(func(w loneWire) int { return w.plainFrame }), ratio(func(w loneWire) int { return w.plainFrame }),
		mid(func(w loneWire) int { return w.plainCommit }), ratio(loneWire.plainTotal), ratio(loneWire.plainAsyncTotal))
	tb.Logf("%s: %d lone writes; medians: raw %d B, prepare header %d B, frame %d B (%.3f of raw), commit %d B, transport %d B per request; "+
		"quorum (prepare + commit) %d B = %.3f of raw; async (commit with frame) %d B = %.3f of raw",
		what, len(ws), mid(func(w loneWire) int { return w.raw }), mid(func(w loneWire) int { return w.prepHeader }),
		mid(func(w loneWire) int { return w.frame }), ratio(func(w loneWire) int { return w.frame }),
		mid(func(w loneWire) int { return w.commit }), requestOverhead, mid(loneWire.total), quorum, mid(loneWire.asyncTotal), async)
	return quorum, async
}

// TestDeltaWireSize: the bytes one peer receives for a lone NoteDb write
// (the common case of a sequential replay: one write per batch), split
// into envelope and frame, on generated NoteDb writes and, with -corpus,
// on a real repository's meta history.
func TestDeltaWireSize(t *testing.T) {
	c := wireCoordinator(t)
	var ws []loneWire
	writes := gittest.NoteDbWrites(gittest.NoteDbShape{Changes: 40, Events: 12, Seed: 77, ServerID: "3f1c2e0a-5b6d-4e7f-8a9b-0c1d2e3f4a5b", FirstChange: 52000})
	objects := memObjects{}
	for _, w := range writes {
		for _, o := range w.Objects {
			objects[o.ID] = git.Object{ID: o.ID, Type: o.Type, Data: o.Data}
		}
	}
	for i, w := range writes {
		if w.Kind != "meta" {
			continue
		}
		d := notedbfast.Delta{Project: "plugins/high-availability"}
		for _, u := range w.Updates {
			d.Updates = append(d.Updates, notedbfast.Update{Ref: u.Ref, Old: u.Old, New: u.New})
		}
		for _, o := range w.Objects {
			typ, err := notedbfast.ParseObjectType(o.Type)
			require.NoError(t, err)
			d.Objects = append(d.Objects, notedbfast.Object{Type: typ, ID: o.ID, Data: o.Data})
		}
		ws = append(ws, measureLone(t, c, d, uint64(1+i%40), objects))
	}
	quorum, async := summarize(t, "generated", ws)
	// Format 1 (a JSON envelope, ids in the frame) was 1.20 and 0.98 here,
	// 1.33 and 1.12 on plugins_high-availability; plain frames with versions
	// spelled out 0.69 and 0.53 here, 0.81 and 0.64 there. Based frames and
	// named versions: 0.51 and 0.44 here, 0.55 and 0.48 there.
	require.Less(t, quorum, 0.6, "quorum bytes per lone write against raw")
	require.Less(t, async, 0.5, "async bytes per lone write against raw")
	if *wireCorpus != "" {
		summarize(t, "corpus "+filepath.Base(*wireCorpus), corpusLone(t, c, *wireCorpus, 300))
	}
}

// wireCoordinator is a coordinator with only its NoteDb codec, for
// encoding messages.
func wireCoordinator(tb testing.TB) *Coordinator {
	tb.Helper()
	nd, err := newNoteDB(nil, nil)
	require.NoError(tb, err)
	tb.Cleanup(nd.close)
	return &Coordinator{nd: nd, log: slog.New(slog.DiscardHandler)}
}

// memObjects is an object store in memory.
type memObjects map[string]git.Object

func (m memObjects) Object(_ context.Context, id string) (git.Object, error) {
	o, ok := m[id]
	if !ok {
		return git.Object{}, fmt.Errorf("object %s is missing", id)
	}
	return o, nil
}

// corpusLone replays the meta history of the first max changes of bundle
// as lone writes.
func corpusLone(t *testing.T, c *Coordinator, bundle string, max int) []loneWire {
	if _, err := os.Stat(bundle); err != nil {
		t.Fatalf("corpus %s given with -corpus is absent: %v", bundle, err)
	}
	e := gittest.Env(t)
	origin := filepath.Join(t.TempDir(), "origin.git")
	e.Run(t, "", "clone", "--quiet", "--mirror", bundle, origin)
	var metas []string
	for ref := range e.Refs(t, origin) {
		if strings.HasPrefix(ref, "refs/changes/") && strings.HasSuffix(ref, "/meta") {
			metas = append(metas, ref)
		}
	}
	slices.Sort(metas)
	metas = metas[:min(max, len(metas))]
	cat := git.NewCatFile(origin)
	t.Cleanup(func() { cat.Close() })
	cl, err := notedbfast.NewClassifier(notedbfast.Config{}, nil)
	require.NoError(t, err)
	var ws []loneWire
	for _, ref := range metas {
		old := refmove.ZeroID
		for k, id := range strings.Fields(e.Run(t, origin, "rev-list", "--reverse", "--first-parent", ref)) {
			u := notedbfast.Update{Ref: ref, Old: old, New: id}
			cls, err := cl.Classify(context.Background(), cat, []notedbfast.Update{u})
			require.NoError(t, err)
			if cls.Path == notedbfast.PathDelta {
				ws = append(ws, measureLone(t, c, notedbfast.Delta{Project: "plugins/high-availability", Objects: cls.Objects, Updates: []notedbfast.Update{u}}, uint64(k+1), cat))
			}
			old = id
		}
	}
	require.NotEmpty(t, ws, fmt.Sprintf("no meta writes in %s", bundle))
	return ws
}
