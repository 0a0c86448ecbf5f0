package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The lab CA's files in its directory. The daemon trusts the responders'
// HTTPS through SSL_CERT_FILE=<dir>/ca.pem, so the name is part of the
// interface.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// caValidity is how long a lab CA (and every leaf it issues) is valid: a
// lab lives for a rehearsal, not for months, and a short life makes a
// leaked lab key worthless soon.
const caValidity = 36 * time.Hour

// caBackdate makes certificates valid a little in the past, so that a
// clock a few minutes behind in a namespace's process does not reject them.
const caBackdate = time.Hour

// CA is the lab's certificate authority: it issues a certificate for a VM
// address on demand, so that the responders answer HTTPS that a client
// trusting only the CA (crypto/tls, no InsecureSkipVerify) accepts.
type CA struct {
	cert    *x509.Certificate
	certDER []byte
	key     *ecdsa.PrivateKey

	mu     sync.Mutex
	leaves map[netip.Addr]*tls.Certificate // issued, by address
}

// NewCA creates a CA (ECDSA P-256, CN "cutover lab CA") and writes it to
// dir/ca.pem and its key to dir/ca-key.pem (0600), replacing what was
// there.
func NewCA(dir string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new lab CA: key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("new lab CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "cutover lab CA", Organization: []string{"cutover lab"}},
		NotBefore:             now.Add(-caBackdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs leaves only
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("new lab CA: sign: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("new lab CA: encode key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("new lab CA: %w", err)
	}
	// The key first: a ca.pem on disk always has its key next to it.
	if err := writeCAFile(filepath.Join(dir, CAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, fmt.Errorf("new lab CA: %w", err)
	}
	if err := writeCAFile(filepath.Join(dir, CACertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("new lab CA: %w", err)
	}
	return newCA(der, key)
}

// LoadCA reads the CA NewCA wrote to dir.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("load lab CA: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("load lab CA: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("load lab CA: %s: no PEM certificate", filepath.Join(dir, CACertFile))
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "EC PRIVATE KEY" {
		return nil, fmt.Errorf("load lab CA: %s: no PEM EC private key", filepath.Join(dir, CAKeyFile))
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load lab CA: %s: %w", filepath.Join(dir, CAKeyFile), err)
	}
	ca, err := newCA(cb.Bytes, key)
	if err != nil {
		return nil, fmt.Errorf("load lab CA from %s: %w", dir, err)
	}
	return ca, nil
}

func newCA(der []byte, key *ecdsa.PrivateKey) (*CA, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("certificate is not a CA")
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("key does not belong to the CA certificate")
	}
	return &CA{cert: cert, certDER: der, key: key, leaves: map[netip.Addr]*tls.Certificate{}}, nil
}

// Certificate is the CA's certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// Pool is a certificate pool holding only the CA: what a client that
// trusts the lab's HTTPS verifies against.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// Leaf returns a server certificate for addr (IP SAN addr, CN addr),
// issued on first use and cached: a lab of 50,000 VMs pays only for the
// addresses that are probed over HTTPS.
func (c *CA) Leaf(addr netip.Addr) (*tls.Certificate, error) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return nil, errors.New("lab CA: leaf for an invalid address")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.leaves[addr]; l != nil {
		return l, nil
	}
	l, err := c.issue(addr)
	if err != nil {
		return nil, fmt.Errorf("lab CA: leaf for %s: %w", addr, err)
	}
	c.leaves[addr] = l
	return l, nil
}

func (c *CA) issue(addr netip.Addr) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: addr.String(), Organization: []string{"cutover lab"}},
		NotBefore:    c.cert.NotBefore,
		NotAfter:     c.cert.NotAfter, // a leaf never outlives its CA
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{addr.AsSlice()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	// The chain carries the CA too, so a client that trusts the CA by
	// name only still gets the whole path.
	return &tls.Certificate{Certificate: [][]byte{der, c.certDER}, PrivateKey: key, Leaf: leaf}, nil
}

// ServerConfig is a TLS configuration that answers every connection with
// the leaf of the address it was made to (its local address): one listener
// on a port serves every VM address with its own certificate, as the VMs
// would. Probes dial VM addresses, without SNI, so the address decides.
func (c *CA) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.Conn == nil {
				return nil, errors.New("lab CA: no connection to take the address from")
			}
			a := localAddr(hello.Conn.LocalAddr())
			if !a.IsValid() {
				return nil, fmt.Errorf("lab CA: local address %v is not an IP address", hello.Conn.LocalAddr())
			}
			return c.Leaf(a)
		},
	}
}

func randomSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	return s, nil
}

// writeCAFile writes b to path with mode perm through a fresh temporary file
// and a rename, so that a reader never sees half a file and an existing
// file's looser mode is not kept.
func writeCAFile(path string, b []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
