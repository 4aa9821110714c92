package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
)

// ALPN is the application protocol every mesh connection must negotiate.
const ALPN = "sitesync/1"

// Refusal checks, in the order they are made; used as the "check" log key
// and the metric label.
const (
	checkALPN     = "alpn"      // the client did not offer ALPN sitesync/1
	checkCert     = "cert"      // no certificate, or one we cannot parse
	checkCA       = "ca"        // the certificate does not chain to the mesh CA
	checkPeerName = "peer_name" // the certificate names no configured site, or not the one dialed
	checkHello    = "hello"     // the HELLO was missing, malformed or names another site
	checkVersion  = "version"   // no common protocol version
)

// identity is the TLS material of this site.
type identity struct {
	cert tls.Certificate
	ca   *x509.CertPool
}

func loadIdentity(cfg Config) (*identity, error) {
	caPEM, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("CA file %q holds no PEM certificate", cfg.CAFile)
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	id := &identity{cert: cert, ca: pool}
	var chain []*x509.Certificate
	for _, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("parse own certificate: %w", err)
		}
		chain = append(chain, c)
	}
	name, err := id.verify(chain)
	if err != nil {
		return nil, fmt.Errorf("own certificate %q: %w", cfg.CertFile, err)
	}
	if name != cfg.Site {
		return nil, fmt.Errorf("own certificate %q names site %q, config says %q", cfg.CertFile, name, cfg.Site)
	}
	return id, nil
}

// verify checks that the chain leads to the CA and returns the site name
// (the leaf's common name).
func (id *identity) verify(certs []*x509.Certificate) (string, error) {
	if len(certs) == 0 {
		return "", &refusal{check: checkCert, err: errors.New("no certificate presented")}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         id.ca,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return leaf.Subject.CommonName, &refusal{check: checkCA, err: fmt.Errorf("certificate of %q does not chain to the mesh CA: %w", leaf.Subject.CommonName, err)}
	}
	return leaf.Subject.CommonName, nil
}

// refusal is why a connection was refused before it became a peer.
type refusal struct {
	check string
	err   error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// verifyPeer is the VerifyConnection of both directions. want is the site we
// dialed ("" when accepting).
func (m *Mesh) verifyPeer(cs tls.ConnectionState, want string, remote net.Addr) error {
	name, err := m.id.verify(cs.PeerCertificates)
	if err == nil {
		switch {
		case want != "" && name != want:
			err = &refusal{check: checkPeerName, err: fmt.Errorf("dialed site %q but its certificate names %q", want, name)}
		case name != m.cfg.Site && m.peers[name] == nil:
			err = &refusal{check: checkPeerName, err: fmt.Errorf("certificate names site %q, which is not a configured peer", name)}
		}
	}
	if err != nil {
		m.logRefusal(err, remote, name)
	}
	return err
}

func (m *Mesh) logRefusal(err error, remote net.Addr, peer string) {
	var r *refusal
	check := "other"
	if errors.As(err, &r) {
		check = r.check
	}
	m.metrics.refused(check)
	m.log.Warn("refused peer connection", "check", check, "remote", addrString(remote), "peer", peer, "error", err)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func (m *Mesh) serverTLS() *tls.Config {
	base := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.id.cert},
		// Asked for, not required by crypto/tls: it would refuse a client
		// without one before verifyPeer runs, unlogged and uncounted.
		// verifyPeer refuses it (check "cert") and names every other
		// failed check.
		ClientAuth:             tls.RequestClientCert,
		NextProtos:             []string{ALPN},
		SessionTicketsDisabled: true, // every connection presents and verifies a full chain
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
			var remote net.Addr
			if chi.Conn != nil {
				remote = chi.Conn.RemoteAddr()
			}
			if !slices.Contains(chi.SupportedProtos, ALPN) {
				err := &refusal{check: checkALPN, err: fmt.Errorf("client offered ALPN %q, want %q", chi.SupportedProtos, ALPN)}
				m.logRefusal(err, remote, "")
				return nil, err
			}
			c := base.Clone()
			c.VerifyConnection = func(cs tls.ConnectionState) error { return m.verifyPeer(cs, "", remote) }
			return c, nil
		},
	}
}

func (m *Mesh) clientTLS(p *peer, remote net.Addr) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{m.id.cert},
		ServerName:             p.name,
		NextProtos:             []string{ALPN},
		InsecureSkipVerify:     true, // replaced by VerifyConnection: CA chain and the dialed site's name
		SessionTicketsDisabled: true,
		VerifyConnection:       func(cs tls.ConnectionState) error { return m.verifyPeer(cs, p.name, remote) },
	}
}
