package transport

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawDial connects to addr as a plain quic-go client with the given
// certificate (none when site is "") and ALPN, and reports whether the
// connection survived: it fails either in the handshake or (TLS 1.3 checks
// the client certificate after the client finished) right after it.
func rawDial(tb testing.TB, addr, dir, site, alpn string) error {
	tb.Helper()
	var certs []tls.Certificate
	if site != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, site+".pem"), filepath.Join(dir, site+"-key.pem"))
		require.NoError(tb, err)
		certs = append(certs, cert)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, addr, &tls.Config{
		Certificates:       certs,
		InsecureSkipVerify: true,
		NextProtos:         []string{alpn},
		ServerName:         "a",
	}, &quic.Config{HandshakeIdleTimeout: 2 * time.Second})
	if err != nil {
		return err
	}
	select {
	case <-qc.Context().Done():
		return context.Cause(qc.Context())
	case <-ctx.Done():
		_ = qc.CloseWithError(0, "")
		return nil // it stayed up: not refused
	}
}

// TestRefusals: each kind of bad peer is refused with a log line naming the
// failed check and leaves no connection on either side.
func TestRefusals(t *testing.T) {
	dir := certDir(t, "a", "b", "x")
	otherCA := certDir(t, "b")
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	a := newSite(t, siteConfig(t, dir, "a", aAddr, []Peer{{Name: "b", Addr: bAddr}}), nil)

	tests := []struct {
		name  string
		run   func(t *testing.T) *site // the refused party when it is a Mesh
		check string
		text  string
	}{
		{name: "certificate from another CA", check: checkCA, text: "does not chain to the mesh CA", run: func(t *testing.T) *site {
			require.Error(t, rawDial(t, aAddr, otherCA, "b", ALPN))
			return nil
		}},
		{name: "site not in peers", check: checkPeerName, text: `certificate names site \"x\", which is not a configured peer`, run: func(t *testing.T) *site {
			require.Error(t, rawDial(t, aAddr, dir, "x", ALPN))
			return nil
		}},
		{name: "no certificate", check: checkCert, text: "no certificate presented", run: func(t *testing.T) *site {
			require.Error(t, rawDial(t, aAddr, dir, "", ALPN))
			return nil
		}},
		{name: "wrong ALPN", check: checkALPN, text: `client offered ALPN [\"h3\"]`, run: func(t *testing.T) *site {
			require.Error(t, rawDial(t, aAddr, dir, "b", "h3"))
			return nil
		}},
		{name: "incompatible HELLO version", check: checkVersion, text: "incompatible protocol version", run: func(t *testing.T) *site {
			b := newSite(t, siteConfig(t, dir, "b", bAddr, []Peer{{Name: "a", Addr: aAddr}}), func(m *Mesh) {
				m.minVersion, m.version = 2, 2
			})
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := tt.run(t)
			for _, s := range []*site{a, other} {
				if s == nil {
					continue
				}
				require.Eventually(t, func() bool {
					return len(s.logs.lines(`"msg":"refused peer connection"`, `"check":"`+tt.check+`"`, tt.text)) > 0
				}, 10*time.Second, 10*time.Millisecond, "site %s: no refusal log for %s", s.cfg.Site, tt.check)
				require.Eventually(t, func() bool { return s.m.live.Load() == 0 }, 10*time.Second, 10*time.Millisecond,
					"site %s: a refused connection is still open", s.cfg.Site)
				assert.False(t, connected(s.m, s.m.names[0]))
			}
			t.Log(a.logs.lines(`"check":"` + tt.check + `"`)[0])
			if other != nil {
				t.Log(other.logs.lines(`"check":"` + tt.check + `"`)[0])
				other.stop(t)
			}
		})
	}
}
