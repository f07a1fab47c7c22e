package dovecottest

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// seedMessages are five messages that POP3 and IMAP must both hand back
// unchanged: all CRLF, each ending in CRLF, so neither server has a reason to
// touch them.
func seedMessages() [][]byte {
	var big bytes.Buffer
	big.WriteString("From: big@example.org\r\nTo: alice@example.org\r\nSubject: two megabytes\r\n\r\n")
	for i := 0; big.Len() < 2<<20; i++ {
		fmt.Fprintf(&big, "%06d ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n", i)
	}
	return [][]byte{
		[]byte("From: one@example.org\r\nSubject: plain\r\n\r\nHello.\r\n"),
		// Dot-stuffing: a lone dot (would end the RETR early), two dots,
		// and a leading dot before text.
		[]byte("From: dots@example.org\r\nSubject: dots\r\n\r\n.\r\n..\r\n.leading dot\r\n...three\r\nend\r\n"),
		// Raw 8-bit in headers: Latin-1 in Subject, UTF-8 in From.
		[]byte("From: J\xc3\xbcrgen <j@example.org>\r\nSubject: Gr\xfc\xdfe aus K\xf6ln\r\n\r\n8-bit body \xe9\r\n"),
		big.Bytes(),
		[]byte("From: last@example.org\r\nSubject: last\r\n\r\nBye.\r\n"),
	}
}

// TestRoundTrip proves that what SeedMaildrop puts in is what RetrAll (POP3)
// and FetchAll (IMAP) give back, byte for byte and in order, and that the
// helpers keep users and folders apart.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := Start(t)
	// A password with the bytes that need care: quoting, spaces, the
	// passwd-file separator, 8-bit.
	const alicePass = `p:a"s\s w0rd ü`
	s.AddUser(t, "alice", alicePass)
	s.AddUser(t, "bob", "bob-secret")

	msgs := seedMessages()
	s.SeedMaildrop(t, "alice", msgs)

	compare := func(what string, got [][]byte) {
		t.Helper()
		if len(got) != len(msgs) {
			t.Fatalf("%s: got %d messages, want %d", what, len(got), len(msgs))
		}
		for i := range msgs {
			if !bytes.Equal(got[i], msgs[i]) {
				t.Errorf("%s: message %d differs: got %d bytes %q..., want %d bytes %q...",
					what, i+1, len(got[i]), head(got[i]), len(msgs[i]), head(msgs[i]))
			}
		}
	}
	compare("FetchAll", s.FetchAll(t, "alice", alicePass, "INBOX"))
	compare("RetrAll", s.RetrAll(t, "alice", alicePass))
	// RetrAll ended with QUIT, not after DELE: nothing may be gone.
	compare("FetchAll after RetrAll", s.FetchAll(t, "alice", alicePass, "INBOX"))

	if got := s.FetchAll(t, "bob", "bob-secret", "INBOX"); len(got) != 0 {
		t.Errorf("bob's INBOX: got %d messages, want none", len(got))
	}
	if got := s.RetrAll(t, "bob", "bob-secret"); len(got) != 0 {
		t.Errorf("bob's maildrop: got %d messages, want none", len(got))
	}
	if got := s.FetchAll(t, "alice", alicePass, "No Such Folder"); got != nil {
		t.Errorf("missing folder: got %d messages, want nil", len(got))
	}

	// A non-ASCII folder name goes through modified UTF-7 both ways.
	c, err := s.loginIMAP("bob", "bob-secret")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.run("CREATE", imapAtom("CREATE"), imapAtom(mailboxName("Entwürfe/台北"))); err != nil {
		t.Fatal(err)
	}
	if err := c.appendMessage("Entwürfe/台北", msgs[0]); err != nil {
		t.Fatal(err)
	}
	c.logout()
	if got := s.FetchAll(t, "bob", "bob-secret", "Entwürfe/台北"); len(got) != 1 || !bytes.Equal(got[0], msgs[0]) {
		t.Errorf("FetchAll of a non-ASCII folder: got %q", got)
	}
}

func head(b []byte) []byte { return b[:min(len(b), 60)] }

// TestAppendNormalization records what Dovecot 2.3.19 does to bytes that are
// not clean CRLF text when they are APPENDed, and how FETCH BODY[] and POP3
// RETR then serve them. The pipeline relies on this, so the test pins it:
//
//   - No APPEND is refused: not bare LF, not bare CR, not NUL.
//   - Bare LF becomes CRLF in both FETCH BODY[] and RETR (Maildir stores LF;
//     both protocols write CRLF).
//   - A bare CR inside a line stays a bare CR in both. Dovecot does NOT turn
//     bare CR into CRLF, so a hash "with every bare CR made CRLF" will not
//     match what Dovecot serves for such a message.
//   - A bare CR directly before CRLF ("\r\r\n") is lost: both give "\r\n".
//   - A bare CR as the very last byte is lost.
//   - NUL is stored as is; FETCH BODY[] serves 0x80 in its place, RETR serves
//     the NUL.
//   - A message without a final line ending: FETCH serves it exactly, RETR
//     adds CRLF (the terminating "." must start a line).
//   - 8-bit bytes pass unchanged.
//
// RETR also sets \Seen (pop3_no_flag_updates = no), FETCH BODY.PEEK[] does
// not.
func TestAppendNormalization(t *testing.T) {
	t.Parallel()
	s := Start(t)
	tests := []struct {
		name      string
		in        string
		wantFetch string
		wantRetr  string
	}{
		{"bare LF", "A: b\nC: d\n\nline1\nline2\n", "A: b\r\nC: d\r\n\r\nline1\r\nline2\r\n", "A: b\r\nC: d\r\n\r\nline1\r\nline2\r\n"},
		{"bare CR", "A: b\r\n\r\nx\ry\r\n", "A: b\r\n\r\nx\ry\r\n", "A: b\r\n\r\nx\ry\r\n"},
		{"only bare CR", "A: b\rC: d\r\rline1\rline2\r", "A: b\rC: d\r\rline1\rline2", "A: b\rC: d\r\rline1\rline2\r\n"},
		{"CR before CRLF", "A: b\r\n\r\nx\r\r\ny\r\n", "A: b\r\n\r\nx\r\ny\r\n", "A: b\r\n\r\nx\r\ny\r\n"},
		{"LF CR CRLF", "A: b\r\n\r\nmixed\n\r\r\n", "A: b\r\n\r\nmixed\r\n\r\n", "A: b\r\n\r\nmixed\r\n\r\n"},
		{"NUL", "A: b\r\n\r\nx\x00y\r\n", "A: b\r\n\r\nx\x80y\r\n", "A: b\r\n\r\nx\x00y\r\n"},
		{"no final newline", "A: b\r\n\r\nlast line", "A: b\r\n\r\nlast line", "A: b\r\n\r\nlast line\r\n"},
		{"8-bit", "A: \xff\xfe\r\n\r\n\x80\xc3\xa9\r\n", "A: \xff\xfe\r\n\r\n\x80\xc3\xa9\r\n", "A: \xff\xfe\r\n\r\n\x80\xc3\xa9\r\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One user per case, so each maildrop holds exactly one message.
			user := "user" + strconv.Itoa(i)
			s.AddUser(t, user, "pw")
			c, err := s.loginIMAP(user, "pw")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.appendMessage("INBOX", []byte(tt.in)); err != nil {
				t.Fatalf("APPEND %q refused: %v", tt.in, err)
			}
			c.logout()
			fetched := s.FetchAll(t, user, "pw", "INBOX")
			if len(fetched) != 1 || string(fetched[0]) != tt.wantFetch {
				t.Errorf("FETCH BODY[] of %q: got %q, want %q", tt.in, fetched, tt.wantFetch)
			}
			retrieved := s.RetrAll(t, user, "pw")
			if len(retrieved) != 1 || string(retrieved[0]) != tt.wantRetr {
				t.Errorf("RETR of %q: got %q, want %q", tt.in, retrieved, tt.wantRetr)
			}
		})
	}
}

// TestTLS proves the generated certificate: IMAPS, POP3S, STARTTLS and STLS
// all verify against CAFile for "localhost" and for 127.0.0.1, a login works
// over each, and a client that does not trust the CA is turned away.
func TestTLS(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.AddUser(t, "alice", "pw")

	caPEM, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("no certificate in %s", s.CAFile)
	}
	for _, serverName := range []string{"localhost", "127.0.0.1"} {
		config := &tls.Config{RootCAs: pool, ServerName: serverName}
		t.Run("IMAPS "+serverName, func(t *testing.T) {
			c, err := dialIMAP(s.IMAPSAddr, config, time.Now().Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.login("alice", "pw"); err != nil {
				t.Fatal(err)
			}
			if err := c.logout(); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("POP3S "+serverName, func(t *testing.T) {
			conn, err := tls.Dial("tcp", s.POP3SAddr, config)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			popLogin(t, &rawPOP3{conn: conn, r: bufio.NewReader(conn)}, true)
		})
	}
	t.Run("IMAP STARTTLS", func(t *testing.T) {
		c, err := dialIMAP(s.IMAPAddr, nil, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.run("STARTTLS", imapAtom("STARTTLS")); err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(c.conn, s.TLSConfig())
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		c.conn, c.r = tc, bufio.NewReader(tc)
		if err := c.login("alice", "pw"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("POP3 STLS", func(t *testing.T) {
		conn, err := net.Dial("tcp", s.POP3Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		p := &rawPOP3{conn: conn, r: bufio.NewReader(conn)}
		if _, err := p.status("greeting"); err != nil {
			t.Fatal(err)
		}
		if _, err := p.cmd("STLS", "STLS"); err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(conn, s.TLSConfig())
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		popLogin(t, &rawPOP3{conn: tc, r: bufio.NewReader(tc)}, false)
	})
	t.Run("untrusted CA", func(t *testing.T) {
		conn, err := tls.Dial("tcp", s.IMAPSAddr, &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"})
		if err == nil {
			conn.Close()
			t.Fatal("handshake succeeded without trusting the CA")
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("got %v, want an unknown-authority error", err)
		}
	})
}

// popLogin logs in as alice/pw on p (reading the greeting first when asked)
// and quits.
func popLogin(t *testing.T, p *rawPOP3, greeting bool) {
	t.Helper()
	p.conn.SetDeadline(time.Now().Add(time.Minute))
	if greeting {
		if _, err := p.status("greeting"); err != nil {
			t.Fatal(err)
		}
	}
	for _, cmd := range []string{"USER alice", "PASS pw", "QUIT"} {
		if _, err := p.cmd(cmd, strings.Fields(cmd)[0]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAPOP proves that APOP works against the passwd-file's {PLAIN.b64}
// passwords: the greeting carries a timestamp, the right digest logs in and a
// wrong one is refused.
func TestAPOP(t *testing.T) {
	t.Parallel()
	s := Start(t)
	const password = "apop: secret"
	s.AddUser(t, "alice", password)
	s.SeedMaildrop(t, "alice", [][]byte{[]byte("Subject: x\r\n\r\ny\r\n")})

	for _, tt := range []struct {
		name   string
		secret string
		wantOK bool
	}{
		{"right secret", password, true},
		{"wrong secret", password + "x", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.POP3Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(time.Minute))
			p := &rawPOP3{conn: conn, r: bufio.NewReader(conn)}
			greeting, err := p.status("greeting")
			if err != nil {
				t.Fatal(err)
			}
			start, end := strings.IndexByte(greeting, '<'), strings.LastIndexByte(greeting, '>')
			if start < 0 || end < start {
				t.Fatalf("greeting %q has no APOP timestamp", greeting)
			}
			digest := md5.Sum([]byte(greeting[start:end+1] + tt.secret))
			reply, err := p.cmd("APOP alice "+hex.EncodeToString(digest[:]), "APOP")
			if tt.wantOK && err != nil {
				t.Fatalf("APOP refused: %v", err)
			}
			if !tt.wantOK && err == nil {
				t.Fatalf("APOP with a wrong secret accepted: %q", reply)
			}
			if tt.wantOK {
				stat, err := p.cmd("STAT", "STAT")
				if err != nil || !strings.HasPrefix(stat, "1 ") {
					t.Errorf("STAT after APOP: %q, %v; want 1 message", stat, err)
				}
			}
		})
	}
}

// TestQuota proves Options.QuotaBytes: an APPEND that fits is taken, one that
// does not is refused with [OVERQUOTA].
func TestQuota(t *testing.T) {
	t.Parallel()
	s := StartWith(t, Options{QuotaBytes: 10000})
	s.AddUser(t, "alice", "pw")
	c, err := s.loginIMAP("alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := func(n int) []byte {
		return append([]byte("Subject: q\r\n\r\n"), bytes.Repeat([]byte("x"), n)...)
	}
	if err := c.appendMessage("INBOX", msg(6000)); err != nil {
		t.Fatalf("APPEND within quota: %v", err)
	}
	err = c.appendMessage("INBOX", msg(6000))
	var statusErr *imapStatusError
	if !errors.As(err, &statusErr) || statusErr.Code != "OVERQUOTA" {
		t.Fatalf("APPEND past quota: got %v, want NO [OVERQUOTA]", err)
	}
}

// TestStopLeavesNothing proves that Stop ends the master and every child,
// closes the ports, and that calling it again is harmless.
func TestStopLeavesNothing(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.AddUser(t, "alice", "pw")
	// Hold a POP3 and an IMAP session open, so there are mail processes.
	pop, err := net.Dial("tcp", s.POP3Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pop.Close()
	p := &rawPOP3{conn: pop, r: bufio.NewReader(pop)}
	popLogin(t, p, true)
	c, err := s.loginIMAP("alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	pgid := s.cmd.Process.Pid
	if n := len(processesInGroup(t, pgid)); n < 3 {
		t.Fatalf("only %d processes in Dovecot's group before Stop", n)
	}
	s.Stop()
	s.Stop()
	if s.Running() {
		t.Error("Running after Stop")
	}
	if left := processesInGroup(t, pgid); len(left) > 0 {
		t.Errorf("processes left after Stop: %v", left)
	}
	for _, addr := range []string{s.POP3Addr, s.POP3SAddr, s.IMAPAddr, s.IMAPSAddr} {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after Stop", addr)
		}
	}
}

// processesInGroup lists "pid comm" for every process whose group is pgid.
func processesInGroup(t *testing.T, pgid int) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		closing := bytes.LastIndexByte(data, ')')
		if closing < 0 {
			continue
		}
		fields := strings.Fields(string(data[closing+1:]))
		if len(fields) < 3 {
			continue
		}
		if pgrp, _ := strconv.Atoi(fields[2]); pgrp == pgid {
			found = append(found, string(data[:closing+1]))
		}
	}
	return found
}

// TestStartTwice proves that two servers run side by side without sharing
// ports, directories or users.
func TestStartTwice(t *testing.T) {
	t.Parallel()
	a, b := Start(t), Start(t)
	if a.Dir == b.Dir || a.IMAPAddr == b.IMAPAddr || a.POP3Addr == b.POP3Addr {
		t.Fatalf("servers share a directory or port: %+v %+v", a, b)
	}
	a.AddUser(t, "alice", "pw")
	b.AddUser(t, "alice", "other")
	a.SeedMaildrop(t, "alice", [][]byte{[]byte("Subject: a\r\n\r\na\r\n")})
	if got := b.RetrAll(t, "alice", "other"); len(got) != 0 {
		t.Errorf("second server sees %d messages seeded into the first", len(got))
	}
	if c, err := b.loginIMAP("alice", "pw"); err == nil {
		c.Close()
		t.Error("second server accepted the first server's password")
	}
}

// TestStartRetriesPortClash proves that Start survives a port taken between
// picking and binding, and that it does not mistake the squatter's greeting
// for Dovecot's. It swaps pickPorts, so it must not run in parallel.
func TestStartRetriesPortClash(t *testing.T) {
	squatter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	go func() {
		for {
			conn, err := squatter.Accept()
			if err != nil {
				return
			}
			conn.Write([]byte("+OK Dovecot ready.\r\n"))
			conn.Close()
		}
	}()
	taken := squatter.Addr().(*net.TCPAddr).Port
	calls := 0
	pickPorts = func(n int) ([]int, error) {
		calls++
		ports, err := freePorts(n)
		if calls == 1 && err == nil {
			ports[0] = taken // the POP3 port
		}
		return ports, err
	}
	defer func() { pickPorts = freePorts }()

	s := Start(t)
	if calls < 2 {
		t.Fatalf("Start picked ports %d times, want a retry", calls)
	}
	if s.POP3Addr == squatter.Addr().String() {
		t.Fatalf("Start settled on the squatter's port %s", s.POP3Addr)
	}
	s.AddUser(t, "alice", "pw")
	if got := s.RetrAll(t, "alice", "pw"); len(got) != 0 {
		t.Errorf("RetrAll: %d messages, want 0", len(got))
	}
}

// TestAddUser proves that users added in quick succession can log in at once
// (Dovecot re-reads a passwd-file at most once a second), that a changed
// password replaces the old one, and that names are case-insensitive.
func TestAddUser(t *testing.T) {
	t.Parallel()
	s := Start(t)
	for i := 0; i < 5; i++ {
		name := "quick" + strconv.Itoa(i)
		s.AddUser(t, name, "pw"+strconv.Itoa(i))
		c, err := s.loginIMAP(name, "pw"+strconv.Itoa(i))
		if err != nil {
			t.Fatalf("new user %s: %v", name, err)
		}
		c.Close()
	}

	s.AddUser(t, "Carol", "old")
	s.SeedMaildrop(t, "carol", [][]byte{[]byte("Subject: c\r\n\r\nc\r\n")})
	if got := s.RetrAll(t, "CAROL", "old"); len(got) != 1 {
		t.Fatalf("RetrAll as CAROL: %d messages, want 1", len(got))
	}
	s.AddUser(t, "carol", "new")
	if c, err := s.loginIMAP("carol", "old"); err == nil {
		c.Close()
		t.Error("the old password still works")
	}
	if got := s.FetchAll(t, "carol", "new", "INBOX"); len(got) != 1 {
		t.Errorf("FetchAll with the new password: %d messages, want 1", len(got))
	}
}

// TestMailFormats proves Options.MailFormat and AddUserFormat: with sdbox or
// mdbox as the server's format, what SeedMaildrop puts in is what FetchAll
// and RetrAll give back and the mail is where MailDir says; a user added
// with AddUserFormat(Maildir) on such a server keeps Maildir, so a test can
// fill it by writing files; and the quota works with the count backend.
func TestMailFormats(t *testing.T) {
	t.Parallel()
	for _, format := range []MailFormat{Sdbox, Mdbox} {
		t.Run(string(format), func(t *testing.T) {
			t.Parallel()
			s := StartWith(t, Options{MailFormat: format, QuotaBytes: 5 << 20})
			s.AddUser(t, "alice", "pw")
			msgs := seedMessages()
			s.SeedMaildrop(t, "alice", msgs)
			for what, got := range map[string][][]byte{
				"FetchAll": s.FetchAll(t, "alice", "pw", "INBOX"),
				"RetrAll":  s.RetrAll(t, "alice", "pw"),
			} {
				if len(got) != len(msgs) {
					t.Fatalf("%s: got %d messages, want %d", what, len(got), len(msgs))
				}
				for i := range msgs {
					if !bytes.Equal(got[i], msgs[i]) {
						t.Errorf("%s: message %d differs", what, i+1)
					}
				}
			}
			dir := s.MailDir(t, "alice")
			if filepath.Base(dir) != string(format) {
				t.Errorf("MailDir = %s, want a directory named %s", dir, format)
			}
			if _, err := os.Stat(dir); err != nil {
				t.Errorf("alice's mail is not in MailDir: %v", err)
			}
			if _, err := os.Stat(filepath.Join(s.home("alice"), "Maildir")); err == nil {
				t.Errorf("alice has a Maildir on a %s server", format)
			}

			// Quota: 2 MB of the 5 MB are used; another 4 MB do not fit.
			c, err := s.loginIMAP("alice", "pw")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.appendMessage("INBOX", append([]byte("Subject: q\r\n\r\n"), bytes.Repeat([]byte("x"), 4<<20)...))
			var statusErr *imapStatusError
			if !errors.As(err, &statusErr) || statusErr.Code != "OVERQUOTA" {
				t.Errorf("APPEND past quota: got %v, want NO [OVERQUOTA]", err)
			}
		})
	}

	t.Run("maildir user on an sdbox server", func(t *testing.T) {
		t.Parallel()
		s := StartWith(t, Options{MailFormat: Sdbox})
		s.AddUserFormat(t, "bob", "pw", Maildir)
		s.AddUser(t, "bob", "pw2") // a new password keeps the format
		dir := s.MailDir(t, "bob")
		if filepath.Base(dir) != "Maildir" {
			t.Fatalf("MailDir = %s, want .../Maildir", dir)
		}
		// Written straight into Maildir/cur, as bench does.
		msg := []byte("Subject: file\r\n\r\nwritten as a file\r\n")
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		name := fmt.Sprintf("1700000000.M1P1.test,S=%d,W=%d:2,", len(msg), len(msg))
		if err := os.WriteFile(filepath.Join(dir, "cur", name), msg, 0o600); err != nil {
			t.Fatal(err)
		}
		filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				err = os.Chown(p, s.uid, s.gid)
			}
			return err
		})
		if got := s.RetrAll(t, "bob", "pw2"); len(got) != 1 || !bytes.Equal(got[0], msg) {
			t.Errorf("RetrAll of the file written into Maildir/cur: got %q", got)
		}
	})
}

// TestMailboxName checks the modified UTF-7 encoder against RFC 3501's
// examples and the cases around '&'.
func TestMailboxName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"INBOX", `"INBOX"`},
		{"a&b", `"a&-b"`},
		{`quote"back\`, `"quote\"back\\"`},
		{"~peter/mail/台北/日本語", `"~peter/mail/&U,BTFw-/&ZeVnLIqe-"`},
		{"Entwürfe", `"Entw&APw-rfe"`},
		{"Ü", `"&ANw-"`},
		{"😀", `"&2D3eAA-"`},
	} {
		if got := mailboxName(tt.in); got != tt.want {
			t.Errorf("mailboxName(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestRawPOP3Body checks the RETR reader on exact transcripts: unstuffing
// only at line starts, bytes otherwise untouched, a cut stream an error.
func TestRawPOP3Body(t *testing.T) {
	for _, tt := range []struct {
		name, wire, want string
		wantErr          bool
	}{
		{"empty", ".\r\n", "", false},
		{"stuffed", "..\r\n..x\r\n.\r\n", ".\r\n.x\r\n", false},
		{"dot after bare LF is data", "a\n.b\r\n.\r\n", "a\n.b\r\n", false},
		{"dot mid-line", "a.\r\n.\r\n", "a.\r\n", false},
		{"bytes kept", "x\x00\xff\ry\r\n.\r\n", "x\x00\xff\ry\r\n", false},
		{"cut", "abc\r\n", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &rawPOP3{r: bufio.NewReader(strings.NewReader(tt.wire))}
			got, err := p.body()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMain refuses to leave a Dovecot behind: a test binary that ends with
// one of its servers' process groups still alive fails.
func TestMain(m *testing.M) {
	code := m.Run()
	startedMu.Lock()
	for _, pgid := range started {
		if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
			fmt.Fprintf(os.Stderr, "dovecottest: process group %d still alive after the tests\n", pgid)
			code = 1
		}
	}
	startedMu.Unlock()
	os.Exit(code)
}

// TestOnePasswdFile proves Options.OnePasswdFile: many users added at once
// with AddUsers, each with its own format where asked, and one added later
// with AddUser, all log in at once; a changed password replaces the old
// one; and they are all in the one file, with no file per user.
func TestOnePasswdFile(t *testing.T) {
	t.Parallel()
	s := StartWith(t, Options{OnePasswdFile: true, MailFormat: Sdbox})
	var users []User
	for i := 0; i < 300; i++ {
		users = append(users, User{Name: "bulk" + strconv.Itoa(i), Password: "pw" + strconv.Itoa(i)})
	}
	users[7].Format = Maildir
	s.AddUsers(t, users)
	for _, i := range []int{0, 7, 299} {
		c, err := s.loginIMAP(users[i].Name, users[i].Password)
		if err != nil {
			t.Fatalf("%s, added with AddUsers: %v", users[i].Name, err)
		}
		c.Close()
	}
	if got := filepath.Base(s.MailDir(t, "bulk7")); got != "Maildir" {
		t.Errorf("bulk7, added with Format Maildir: MailDir ends in %s", got)
	}
	if got := filepath.Base(s.MailDir(t, "bulk8")); got != string(Sdbox) {
		t.Errorf("bulk8: MailDir ends in %s, want the server's %s", got, Sdbox)
	}

	s.AddUser(t, "late", "pw")
	s.SeedMaildrop(t, "late", [][]byte{[]byte("Subject: l\r\n\r\nl\r\n")})
	s.AddUser(t, "late", "new")
	if c, err := s.loginIMAP("late", "pw"); err == nil {
		c.Close()
		t.Error("the old password still works")
	}
	if got := s.RetrAll(t, "late", "new"); len(got) != 1 {
		t.Errorf("RetrAll with the new password: %d messages, want 1", len(got))
	}
	if c, err := s.loginIMAP("bulk0", "pw0"); err != nil {
		t.Errorf("bulk0 after the file was rewritten: %v", err)
	} else {
		c.Close()
	}

	data, err := os.ReadFile(filepath.Join(s.Dir, "users.passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines != 301 {
		t.Errorf("users.passwd holds %d lines, want 301", lines)
	}
	if entries, _ := os.ReadDir(s.usersDir); len(entries) != 0 {
		t.Errorf("%d files in %s, want none with OnePasswdFile", len(entries), s.usersDir)
	}
}
