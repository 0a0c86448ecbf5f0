package lab

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	for file, mode := range map[string]os.FileMode{CACertFile: 0o644, CAKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, file))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want mode %v", file, fi.Mode(), err, mode)
		}
	}
	c := ca.Certificate()
	if c.Subject.CommonName != "cutover lab CA" || !c.IsCA || !c.MaxPathLenZero {
		t.Errorf("CA certificate %q, CA %v, max path 0 %v", c.Subject.CommonName, c.IsCA, c.MaxPathLenZero)
	}
	if life := time.Until(c.NotAfter); life < 24*time.Hour || life > 48*time.Hour {
		t.Errorf("CA valid for %s more, want a day or so", life)
	}
	loaded, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Certificate().Equal(c) {
		t.Error("LoadCA read another certificate")
	}

	a := netip.MustParseAddr("10.64.0.10")
	leaf, err := loaded.Leaf(a)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := loaded.Leaf(netip.MustParseAddr("::ffff:10.64.0.10")); again != leaf {
		t.Error("a second Leaf for the same address issued a new certificate")
	}
	// The loaded CA's leaf verifies against the CA as written by NewCA.
	_, err = leaf.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: a.String(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Errorf("leaf for %s: %v", a, err)
	}
	if leaf.Leaf.NotAfter.After(c.NotAfter) {
		t.Errorf("leaf outlives its CA: %s after %s", leaf.Leaf.NotAfter, c.NotAfter)
	}
	six, err := ca.Leaf(netip.MustParseAddr("fd00:64::10"))
	if err != nil || len(six.Leaf.IPAddresses) != 1 || six.Leaf.IPAddresses[0].String() != "fd00:64::10" {
		t.Errorf("IPv6 leaf: %v, %v", six, err)
	}
}

func TestLoadCAErrors(t *testing.T) {
	dir := t.TempDir()
	good, other := filepath.Join(dir, "good"), filepath.Join(dir, "other")
	if _, err := NewCA(good); err != nil {
		t.Fatal(err)
	}
	if _, err := NewCA(other); err != nil {
		t.Fatal(err)
	}
	mixed := filepath.Join(dir, "mixed")
	garbage := filepath.Join(dir, "garbage")
	for _, d := range []string{mixed, garbage} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, filepath.Join(good, CACertFile), filepath.Join(mixed, CACertFile))
	copyFile(t, filepath.Join(other, CAKeyFile), filepath.Join(mixed, CAKeyFile))
	copyFile(t, filepath.Join(good, CAKeyFile), filepath.Join(garbage, CAKeyFile))
	if err := os.WriteFile(filepath.Join(garbage, CACertFile), []byte("not PEM\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		dir, want string
	}{
		{missing, "load lab CA: open " + filepath.Join(missing, CACertFile) + ": no such file or directory"},
		{mixed, "load lab CA from " + mixed + ": key does not belong to the CA certificate"},
		{garbage, "load lab CA: " + filepath.Join(garbage, CACertFile) + ": no PEM certificate"},
	} {
		if _, err := LoadCA(tc.dir); err == nil || err.Error() != tc.want {
			t.Errorf("LoadCA(%s) = %v, want %q", filepath.Base(tc.dir), err, tc.want)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsServe answers TLS on a loopback address with cfg until the test ends:
// each connection completes the handshake and is closed.
func tlsServe(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()
	return ln.Addr().String()
}

// TestCAServerConfig: a Go client trusting only the lab CA verifies the
// leaf of the address it dialled, chosen by the server's local address;
// without the CA it rejects it.
func TestCAServerConfig(t *testing.T) {
	ca, err := NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := ca.ServerConfig()
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		hp := tlsServe(t, ip+":0", cfg)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", hp, &tls.Config{RootCAs: ca.Pool()})
		if err != nil {
			t.Fatalf("TLS to %s with the lab CA: %v", hp, err)
		}
		got := c.ConnectionState().PeerCertificates[0].IPAddresses
		c.Close()
		if len(got) != 1 || got[0].String() != ip {
			t.Errorf("%s answered with a certificate for %v", ip, got)
		}
		_, err = tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", hp, &tls.Config{RootCAs: x509.NewCertPool()})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("TLS to %s without the lab CA: %v, want x509.UnknownAuthorityError", hp, err)
		}
	}
}

// caClientEnv makes TestCASystemPoolClient dial that address: it runs in a
// child process started with SSL_CERT_FILE, as the lab's daemon is.
const caClientEnv = "CUTOVER_TEST_CA_DIAL"

// TestCASSLCertFile: a process started with SSL_CERT_FILE=<dir>/ca.pem
// (how the lab starts its daemon) verifies the responders' certificates
// with the default TLS configuration; without it, it does not.
func TestCASSLCertFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process: skipped in -short mode")
	}
	dir := t.TempDir()
	ca, err := NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	hp := tlsServe(t, "127.0.0.1:0", ca.ServerConfig())
	// An empty SSL_CERT_DIR: the child sees only what SSL_CERT_FILE names.
	noDir := t.TempDir()
	for _, tc := range []struct {
		certFile string
		ok       bool
	}{
		{filepath.Join(dir, CACertFile), true},
		{filepath.Join(dir, "empty.pem"), false},
	} {
		if err := os.WriteFile(filepath.Join(dir, "empty.pem"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCASystemPoolClient$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), caClientEnv+"="+hp, "SSL_CERT_FILE="+tc.certFile, "SSL_CERT_DIR="+noDir)
		out, err := cmd.CombinedOutput()
		if ok := err == nil && strings.Contains(string(out), "verified "+hp); ok != tc.ok {
			t.Errorf("child with SSL_CERT_FILE=%s: verified %v, want %v: %v\n%s", filepath.Base(tc.certFile), ok, tc.ok, err, out)
		}
	}
}

// TestCASystemPoolClient is the child of TestCASSLCertFile.
func TestCASystemPoolClient(t *testing.T) {
	hp := os.Getenv(caClientEnv)
	if hp == "" {
		t.Skip("the child process of TestCASSLCertFile")
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", hp, &tls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	t.Logf("verified %s", hp)
}
