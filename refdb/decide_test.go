package refdb_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
)

func sha(c byte) string { return strings.Repeat(string(c), 40) }

func TestDecide(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	z := refmove.ZeroID
	rec := func(ref, v string, n uint64) refdb.Record {
		return refdb.Record{Ref: ref, Value: v, Version: n, Site: "b", Txn: "old"}
	}
	for _, tc := range []struct {
		name         string
		updates      []refdb.Update
		current      []refdb.Record
		wantVersions []uint64
		wantConflict []string // refs named
	}{
		{"create", []refdb.Update{{Ref: "refs/x", Old: z, New: sha('a')}}, []refdb.Record{refdb.Missing("refs/x")}, []uint64{1}, nil},
		{"create over tombstone", []refdb.Update{{Ref: "refs/x", Old: z, New: sha('a')}}, []refdb.Record{rec("refs/x", z, 4)}, []uint64{5}, nil},
		{"create existing", []refdb.Update{{Ref: "refs/x", Old: z, New: sha('a')}}, []refdb.Record{rec("refs/x", sha('b'), 1)}, nil, []string{"refs/x"}},
		{"update", []refdb.Update{{Ref: "refs/x", Old: sha('b'), New: sha('c')}}, []refdb.Record{rec("refs/x", sha('b'), 7)}, []uint64{8}, nil},
		{"update missing", []refdb.Update{{Ref: "refs/x", Old: sha('b'), New: sha('c')}}, []refdb.Record{refdb.Missing("refs/x")}, nil, []string{"refs/x"}},
		{"delete", []refdb.Update{{Ref: "refs/x", Old: sha('b'), New: z}}, []refdb.Record{rec("refs/x", sha('b'), 2)}, []uint64{3}, nil},
		{"empty value read as zero", []refdb.Update{{Ref: "refs/x", Old: z, New: sha('a')}}, []refdb.Record{{}}, []uint64{1}, nil},
		{"one of three wrong", []refdb.Update{{Ref: "refs/a", Old: sha('a'), New: sha('d')}, {Ref: "refs/b", Old: sha('a'), New: sha('d')}, {Ref: "refs/c", Old: z, New: sha('d')}},
			[]refdb.Record{rec("refs/a", sha('a'), 1), rec("refs/b", sha('b'), 1), refdb.Missing("refs/c")}, nil, []string{"refs/b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := refdb.Batch{Txn: "t1", Site: "a", Updates: tc.updates}
			next, conflict := refdb.Decide("p", b, tc.current, now)
			if tc.wantConflict != nil {
				require.NotNil(t, conflict)
				assert.Nil(t, next)
				var refs []string
				for _, c := range conflict.Refs {
					refs = append(refs, c.Ref)
				}
				assert.Equal(t, tc.wantConflict, refs)
				return
			}
			require.Nil(t, conflict)
			for i, r := range next {
				assert.Equal(t, tc.updates[i].Ref, r.Ref)
				assert.Equal(t, tc.updates[i].New, r.Value)
				assert.Equal(t, tc.wantVersions[i], r.Version)
				assert.Equal(t, "a", r.Site)
				assert.Equal(t, "t1", r.Txn)
				assert.Equal(t, now, r.Time)
			}
		})
	}
}

func TestConflictErrorMessage(t *testing.T) {
	err := error(&refdb.ConflictError{Project: "tango/core", Refs: []refdb.RefConflict{
		{Ref: "refs/heads/main", Want: sha('a'), Current: refdb.Record{Value: sha('b'), Version: 7, Site: "b"}},
		{Ref: "refs/heads/gone", Want: sha('a'), Current: refdb.Record{Value: refmove.ZeroID, Version: 3, Site: "c"}},
		{Ref: "refs/heads/new", Want: sha('a'), Current: refdb.Missing("refs/heads/new")},
	}})
	assert.True(t, errors.Is(err, refdb.ErrConflict))
	assert.Equal(t, `refdb: conflict in project "tango/core":`+
		` refs/heads/main is `+sha('b')+` (version 7, site "b"), expected `+sha('a')+`;`+
		` refs/heads/gone was deleted at site "c" (version 3), expected `+sha('a')+`;`+
		` refs/heads/new does not exist, expected `+sha('a'), err.Error())
}

func TestUnavailableKeepsCause(t *testing.T) {
	cause := errors.New("connection refused")
	err := refdb.Unavailable("cas in \"p\"", cause)
	assert.ErrorIs(t, err, refdb.ErrUnavailable)
	assert.ErrorIs(t, err, cause)
	assert.Equal(t, `cas in "p": refdb unavailable: connection refused`, err.Error())
}

func TestValidateRef(t *testing.T) {
	for _, tc := range []struct {
		ref string
		ok  bool
	}{
		{"refs/heads/main", true},
		{"HEAD", true},
		{"refs/heads/ünïcødé", true},
		{"refs/heads/a+b=c,d;e!f#g%h&'()", true},
		{"refs/heads/@", true},
		{"refs/changes/01/1/meta", true},
		{"heads/main", false},
		{"refs/heads/", false},
		{"refs/heads/a..b", false},
		{"refs/heads//a", false},
		{"refs/heads/.hidden", false},
		{"refs/heads/a.lock", false},
		{"refs/heads/a@{1}", false},
		{"refs/heads/a b", false},
		{"refs/heads/a~1", false},
		{"refs/heads/a^", false},
		{"refs/heads/a:b", false},
		{"refs/heads/a?", false},
		{"refs/heads/a*", false},
		{"refs/heads/a[", false},
		{"refs/heads/a\\b", false},
		{"refs/heads/a\x00b", false},
		{"refs/heads/a\x7f", false},
		{"refs/heads/a.", false},
		{"refs/heads/\xff", false},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			err := refdb.ValidateRef(tc.ref)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, refdb.ErrInvalid)
			}
		})
	}
}

func TestValidateProject(t *testing.T) {
	for _, tc := range []struct {
		name    string
		project string
		want    string // "" when valid
	}{
		{"plain", "tango/core", ""},
		{"unicode letters", "ünïcode/日本", ""},
		{"empty", "", "empty project name"},
		{"NUL", "a\x00b", "control character"},
		{"C1 control", "a\u0085b", "control character"},
		{"right-to-left override", "evil\u202Egpj.exe", "invisible character U+202E"},
		{"left-to-right embedding", "a\u202Ab", "invisible character U+202A"},
		{"isolate", "a\u2066b\u2069", "invisible character U+2066"},
		{"zero-width space", "tango\u200B/core", "invisible character U+200B"},
		{"right-to-left mark", "a\u200Fb", "invisible character U+200F"},
		{"byte-order mark", "\uFEFFtango", "invisible character U+FEFF"},
		{"soft hyphen", "tan\u00ADgo", "invisible character U+00AD"},
		{"tag character", "a\U000E0041", "invisible character U+E0041"},
		{"line separator", "a\u2028b", "invisible character U+2028"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := refdb.ValidateProject(tc.project)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, refdb.ErrInvalid)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestRecordCodecRoundTrip(t *testing.T) {
	r := refdb.Record{Ref: "refs/heads/x", Value: sha('c'), Version: 42, Site: "b", Txn: "t-9", Time: time.Unix(1700000000, 123456789).UTC()}
	got, err := refdb.DecodeRecord(r.Ref, refdb.EncodeRecord(r))
	require.NoError(t, err)
	assert.Equal(t, r, got)
	_, err = refdb.DecodeRecord("refs/x", []byte(`{"v":"nope"}`))
	require.Error(t, err)
}
