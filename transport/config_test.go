package transport

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Site: "a", Listen: "127.0.0.1:7443", CAFile: "ca", CertFile: "c", KeyFile: "k", StateDir: "s",
		Peers: []Peer{{Name: "b", Addr: "127.0.0.1:7444"}}}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{name: "valid", mod: func(*Config) {}},
		{name: "no site", mod: func(c *Config) { c.Site = "" }, wantErr: "site name is empty"},
		{name: "peer twice", mod: func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) }, wantErr: `peer "b" listed twice`},
		{name: "peer is self", mod: func(c *Config) { c.Peers[0].Name = "a" }, wantErr: `peer "a" listed twice or equal to this site`},
		{name: "peer without addr", mod: func(c *Config) { c.Peers[0].Addr = "" }, wantErr: `peer "b" has no address`},
		{name: "tiny max frame", mod: func(c *Config) { c.MaxFrame = 10 }, wantErr: "max frame 10 out of range"},
		{name: "keep-alive above half idle", mod: func(c *Config) { c.IdleTimeout, c.KeepAlive = time.Second, 600*time.Millisecond }, wantErr: "keep-alive 600ms must be positive and at most half"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Peers = append([]Peer(nil), ok.Peers...)
			tt.mod(&c)
			err := c.withDefaults().Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
	d := ok.withDefaults()
	assert.Equal(t, DefaultMaxFrame, d.MaxFrame)
	assert.Equal(t, DefaultStreamWindow, d.StreamWindow)
	assert.Equal(t, DefaultConnWindow, d.ConnWindow)
	assert.Less(t, d.KeepAlive, d.IdleTimeout)
}

func TestGenerateCerts(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, GenerateCerts(dir, []string{"a", "b"}))
	for _, f := range []string{"ca.pem", "a.pem", "a-key.pem", "b.pem", "b-key.pem"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	st, err := os.Stat(filepath.Join(dir, "a-key.pem"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	raw, err := os.ReadFile(filepath.Join(dir, "a.pem"))
	require.NoError(t, err)
	blk, _ := pem.Decode(raw)
	cert, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	assert.Equal(t, "a", cert.Subject.CommonName)
	assert.ElementsMatch(t, []string{"a", "localhost"}, cert.DNSNames)
	assert.True(t, cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)))
	assert.True(t, cert.IPAddresses[1].Equal(net.IPv6loopback))
	assert.Equal(t, x509.ECDSA, cert.PublicKeyAlgorithm)
	_, err = loadIdentity(Config{Site: "a", CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "a.pem"), KeyFile: filepath.Join(dir, "a-key.pem")})
	require.NoError(t, err)
	_, err = loadIdentity(Config{Site: "b", CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "a.pem"), KeyFile: filepath.Join(dir, "a-key.pem")})
	assert.ErrorContains(t, err, `names site "a", config says "b"`)

	assert.Error(t, GenerateCerts(dir, []string{"a"}), "must not overwrite")
	assert.Error(t, GenerateCerts(t.TempDir(), []string{"../evil"}))
}
