package packsync

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

var (
	zero = strings.Repeat("0", 40)
	one  = strings.Repeat("1", 40)
	two  = strings.Repeat("2", 40)
)

func TestParsePush(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     string
		commands []Command
		hasPack  bool
		err      string
		// notTeeable: valid git the tee passes on untouched.
		notTeeable bool
	}{
		{
			name:     "update and create with pack",
			body:     pkt(one+" "+two+" refs/heads/main\x00report-status side-band-64k") + pkt(zero+" "+one+" refs/tags/v1\n") + "0000PACKdata",
			commands: []Command{{Ref: "refs/heads/main", Old: one, New: two}, {Ref: "refs/tags/v1", Old: zero, New: one}},
			hasPack:  true,
		},
		{
			name:     "delete only: no pack",
			body:     pkt(one+" "+zero+" refs/heads/gone\x00report-status") + "0000",
			commands: []Command{{Ref: "refs/heads/gone", Old: one, New: zero}},
		},
		{
			name:     "push options",
			body:     pkt(one+" "+two+" refs/heads/main\x00report-status push-options") + "0000" + pkt("topic=x") + "0000PACK",
			commands: []Command{{Ref: "refs/heads/main", Old: one, New: two}},
			hasPack:  true,
		},
		{name: "empty", body: "0000"},
		{name: "signed push", body: pkt("push-cert\x00report-status") + pkt("certificate version 0.1\n"), err: "signed push", notTeeable: true},
		{name: "shallow", body: pkt("shallow "+one) + "0000", err: "shallow", notTeeable: true},
		{name: "bad length", body: "zzzz", err: "malformed pkt-line length"},
		{name: "truncated", body: pkt(one + " " + two + " refs/heads/main")[:20], err: "unexpected EOF"},
		{name: "bad command", body: pkt("hello world") + "0000", err: "malformed push command"},
		{name: "short pkt", body: "0002", err: "unexpected pkt-line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tc.body))
			p, err := ParsePush(r)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.Equal(t, tc.notTeeable, errors.Is(err, ErrNotTeeable))
			} else {
				require.NoError(t, err)
				require.Equal(t, tc.commands, p.Commands)
				require.Equal(t, tc.hasPack, p.HasPack)
			}
			// Head and the rest are exactly the body: git sees every byte.
			rest, _ := io.ReadAll(r)
			require.Equal(t, tc.body, string(p.Head)+string(rest))
		})
	}
}

// FuzzParsePush: any body either parses or is refused, and in both cases
// Head plus what is left in the reader is the body, byte for byte.
func FuzzParsePush(f *testing.F) {
	f.Add([]byte(pkt(one+" "+two+" refs/heads/main\x00report-status push-options") + "0000" + pkt("o") + "0000PACK"))
	f.Add([]byte(pkt(one+" "+zero+" refs/heads/x\x00") + "0000"))
	f.Add([]byte("0000"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := bufio.NewReader(bytes.NewReader(body))
		p, err := ParsePush(r)
		rest, _ := io.ReadAll(r)
		if !bytes.Equal(append(append([]byte(nil), p.Head...), rest...), body) {
			t.Fatalf("bytes lost: head %q rest %q body %q", p.Head, rest, body)
		}
		if err == nil {
			for _, c := range p.Commands {
				if len(c.Old) != 40 || len(c.New) != 40 || c.Ref == "" {
					t.Fatalf("bad command %+v", c)
				}
			}
		}
	})
}

func TestDecodeHeader(t *testing.T) {
	h := Header{Project: "tango/core", Txn: "a-1-x"}
	got, err := DecodeHeader(EncodeHeader(h))
	require.NoError(t, err)
	require.Equal(t, h, got)
	for _, bad := range []string{`{"project":"../x","txn":"a"}`, `{"project":"p","txn":"a/b"}`, `{"project":"p","txn":"a","x":1}`, `not json`, `{"project":"p","txn":"a"}{}`} {
		_, err := DecodeHeader([]byte(bad))
		require.Error(t, err, bad)
	}
}

func FuzzDecodeHeader(f *testing.F) {
	f.Add(EncodeHeader(Header{Project: "p", Txn: "a-1"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		again, err := DecodeHeader(EncodeHeader(h))
		if err != nil || again != h {
			t.Fatalf("round trip of %+v: %+v, %v", h, again, err)
		}
	})
}
