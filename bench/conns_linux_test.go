package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"testing"
)

// countEstablished returns how many ESTABLISHED IPv4 TCP sockets have a
// peer port in ports, from one NETLINK_INET_DIAG dump.
func countEstablished(ports map[uint16]bool) (int, error) {
	const (
		netlinkInetDiag  = 4  // NETLINK_INET_DIAG
		sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
		tcpEstablished   = 1
	)
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, netlinkInetDiag)
	if err != nil {
		return 0, fmt.Errorf("netlink socket: %w", err)
	}
	defer syscall.Close(fd)
	// struct nlmsghdr, then struct inet_diag_req_v2 with an empty
	// inet_diag_sockid: every socket in the given states.
	req := make([]byte, 16+56)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], sockDiagByFamily)
	binary.NativeEndian.PutUint16(req[6:], syscall.NLM_F_REQUEST|syscall.NLM_F_DUMP)
	req[16], req[17] = syscall.AF_INET, syscall.IPPROTO_TCP
	binary.NativeEndian.PutUint32(req[20:], 1<<tcpEstablished)
	if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, 1<<16)
	count := 0
	for {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			return 0, fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return 0, fmt.Errorf("netlink parse: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case syscall.NLMSG_DONE:
				return count, nil
			case syscall.NLMSG_ERROR:
				return 0, errors.New("netlink: the kernel refused the sock_diag dump")
			}
			// struct inet_diag_msg: family, state, timer, retrans, then
			// the socket id, whose source and destination ports are in
			// network byte order.
			if len(m.Data) >= 8 && ports[binary.BigEndian.Uint16(m.Data[6:8])] {
				count++
			}
		}
	}
}

// TestCountEstablished: the sampler counts each connection to a port
// once, from the client's side, and stops counting it once it closes.
func TestCountEstablished(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.ParseUint(p, 10, 16)
	ports := map[uint16]bool{uint16(port): true}
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c, s)
	}
	if n, err := countEstablished(ports); err != nil || n != 3 {
		t.Fatalf("3 connections open: counted %d (%v)", n, err)
	}
	for _, c := range conns[:2] {
		c.Close()
	}
	if n, err := countEstablished(ports); err != nil || n != 2 {
		t.Fatalf("one connection closed on both sides: counted %d (%v)", n, err)
	}
	for _, c := range conns[2:] {
		c.Close()
	}
}
