package gobgp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// shutdownSessions shuts down this process's established TCP connections to
// peers (FIN, no BGP NOTIFICATION), as a crash would: a graceful-restart
// helper then keeps our routes. GoBGP has no API to drop a session without
// a NOTIFICATION, and its NOTIFICATIONs on stop make peers withdraw unless
// RFC 8538 was negotiated. The sockets are found through /proc: their
// inodes in /proc/self/net/tcp{,6}, then the descriptors that point at them.
func shutdownSessions(peers []netip.Addr) error {
	if len(peers) == 0 {
		return nil
	}
	want := map[netip.Addr]bool{}
	for _, p := range peers {
		want[p.Unmap()] = true
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		if err := established(f, want, inodes); err != nil {
			return err
		}
	}
	if len(inodes) == 0 {
		return nil
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("shut down sessions: %w", err)
	}
	var errs []error
	for _, e := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		if !inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := unix.Shutdown(fd, unix.SHUT_RDWR); err != nil && !errors.Is(err, unix.ENOTCONN) {
			errs = append(errs, fmt.Errorf("shut down session socket %d: %w", fd, err))
		}
	}
	return errors.Join(errs...)
}

// established adds to inodes the sockets in a /proc/net/tcp-style file that
// are established with a remote address in want.
func established(file string, want map[netip.Addr]bool, inodes map[string]bool) error {
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // no IPv6
		}
		return fmt.Errorf("shut down sessions: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "01" { // TCP_ESTABLISHED
			continue
		}
		remote, ok := procAddr(fields[2])
		if ok && want[remote.Unmap()] {
			inodes[fields[9]] = true
		}
	}
	return sc.Err()
}

// procAddr parses "0100007F:0277": the kernel prints the address as 32-bit
// words read in host byte order, then the port.
func procAddr(s string) (netip.Addr, bool) {
	h, _, ok := strings.Cut(s, ":")
	if !ok || (len(h) != 8 && len(h) != 32) {
		return netip.Addr{}, false
	}
	b := make([]byte, len(h)/2)
	for i := 0; i < len(h); i += 8 {
		w, err := strconv.ParseUint(h[i:i+8], 16, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		binary.NativeEndian.PutUint32(b[i/2:], uint32(w))
	}
	a, ok := netip.AddrFromSlice(b)
	return a, ok
}

// checkMD5 reports whether TCP MD5 signature keys (RFC 2385) can be set on
// the sockets GoBGP will use for a peer at a: its dialing socket, and its
// listener when listen is set. GoBGP only logs a warning when it cannot
// set a key, which would leave a configured password silently unused.
// Go (1.24 on) opens listeners as MPTCP where the kernel supports it, and
// MPTCP sockets refuse TCP_MD5SIG: GODEBUG=multipathtcp=0 turns that off
// (cmd/cutover sets it).
func checkMD5(a netip.Addr, listen bool) error {
	family, loop := unix.AF_INET, "127.0.0.1:0"
	if a.Is6() {
		family, loop = unix.AF_INET6, "[::1]:0"
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return fmt.Errorf("probe TCP MD5 support: %w", err)
	}
	defer unix.Close(fd)
	if err := setMD5(fd, a); err != nil {
		return fmt.Errorf("this kernel refuses TCP MD5 signatures (TCP_MD5SIG: %w)", err)
	}
	if !listen {
		return nil
	}
	l, err := net.Listen("tcp", loop)
	if err != nil {
		return fmt.Errorf("probe TCP MD5 support: %w", err)
	}
	defer l.Close()
	rc, err := l.(*net.TCPListener).SyscallConn()
	if err != nil {
		return fmt.Errorf("probe TCP MD5 support: %w", err)
	}
	var serr error
	var proto int
	if err := rc.Control(func(fd uintptr) {
		serr = setMD5(int(fd), a)
		proto, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL)
	}); err != nil {
		return fmt.Errorf("probe TCP MD5 support: %w", err)
	}
	if serr != nil && proto == unix.IPPROTO_MPTCP {
		return fmt.Errorf("listening sockets are MPTCP, which refuses TCP MD5 signatures: run with GODEBUG=multipathtcp=0, or set listen port -1 (TCP_MD5SIG: %w)", serr)
	}
	if serr != nil {
		return fmt.Errorf("listening sockets refuse TCP MD5 signatures (TCP_MD5SIG: %w)", serr)
	}
	return nil
}

func setMD5(fd int, a netip.Addr) error {
	sig := unix.TCPMD5Sig{Keylen: 1, Key: [80]byte{'x'}}
	if a.Is4() {
		sig.Addr.Family = unix.AF_INET
		b := a.As4()
		copy(sig.Addr.Data[2:6], b[:]) // sockaddr_in: port, then address
	} else {
		sig.Addr.Family = unix.AF_INET6
		b := a.As16()
		copy(sig.Addr.Data[6:22], b[:]) // sockaddr_in6: port, flowinfo, address
	}
	return unix.SetsockoptTCPMD5Sig(fd, unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig)
}

// checkPeerIsSelf refuses a unix socket connection from another process.
func checkPeerIsSelf(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("gobgp api: refuse %T connection", c)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("gobgp api: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("gobgp api: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("gobgp api: peer credentials: %w", cerr)
	}
	if int(cred.Pid) != os.Getpid() {
		return fmt.Errorf("gobgp api: refuse connection from pid %d", cred.Pid)
	}
	return nil
}
