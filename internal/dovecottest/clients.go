package dovecottest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// helperDeadline bounds each helper's whole session (login to logout), so a
// wedged server fails the test with a message instead of hanging it.
const helperDeadline = 2 * time.Minute

// SeedMaildrop appends msgs, in order, to user's INBOX over IMAP, so that
// POP3 serves them as messages 1..len(msgs). The user must have been added
// with AddUser. A message Dovecot refuses fails the test.
func (s *Server) SeedMaildrop(t testing.TB, user string, msgs [][]byte) {
	t.Helper()
	s.AppendTo(t, user, "INBOX", msgs)
}

// AppendTo appends msgs, in order, to an existing folder of user's over
// IMAP, as another mail client would. A message Dovecot refuses fails the
// test.
func (s *Server) AppendTo(t testing.TB, user, folder string, msgs [][]byte) {
	t.Helper()
	c, err := s.loginIMAP(user, s.password(t, user))
	if err != nil {
		t.Fatalf("dovecottest: AppendTo: %v", err)
	}
	defer c.Close()
	for i, msg := range msgs {
		if err := c.appendMessage(folder, msg); err != nil {
			t.Fatalf("dovecottest: AppendTo %s %q: message %d of %d (%d bytes): %v", user, folder, i+1, len(msgs), len(msg), err)
		}
	}
	if err := c.logout(); err != nil {
		t.Fatalf("dovecottest: AppendTo %s: %v", user, err)
	}
}

// loginIMAP opens a plain-text IMAP session as user, bounded by helperDeadline.
func (s *Server) loginIMAP(user, password string) (*rawIMAP, error) {
	c, err := dialIMAP(s.IMAPAddr, nil, time.Now().Add(helperDeadline))
	if err != nil {
		return nil, err
	}
	if err := c.login(user, password); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// FetchAll returns every message in folder as UID FETCH BODY.PEEK[] returns
// it, in UID order, without setting \Seen. A folder that does not exist
// gives nil. folder is a UTF-8 name; it goes on the wire in modified UTF-7.
func (s *Server) FetchAll(t testing.TB, user, password, folder string) [][]byte {
	t.Helper()
	c, err := s.loginIMAP(user, password)
	if err != nil {
		t.Fatalf("dovecottest: FetchAll: %v", err)
	}
	defer c.Close()
	msgs, err := c.fetchAll(folder)
	if err != nil {
		t.Fatalf("dovecottest: FetchAll %s %q: %v", user, folder, err)
	}
	if err := c.logout(); err != nil {
		t.Fatalf("dovecottest: FetchAll %s: %v", user, err)
	}
	return msgs
}

// RetrAll logs in to POP3Addr with USER/PASS and returns the body of every
// message, RETR by RETR, with the dot-stuffing undone and nothing else
// changed: the bytes are what Dovecot sent between the +OK line and the
// terminating ".\r\n". It ends with QUIT, so nothing is deleted.
//
// It speaks POP3 itself, deliberately: it checks the pop3 package, so it
// must not be built from it.
func (s *Server) RetrAll(t testing.TB, user, password string) [][]byte {
	t.Helper()
	msgs, err := s.retrAll(user, password)
	if err != nil {
		t.Fatalf("dovecottest: RetrAll %s: %v", user, err)
	}
	return msgs
}

func (s *Server) retrAll(user, password string) ([][]byte, error) {
	if strings.ContainsAny(user+password, "\r\n") {
		return nil, errors.New("user or password holds CR or LF")
	}
	conn, err := net.DialTimeout("tcp", s.POP3Addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("POP3 dial %s: %w", s.POP3Addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(helperDeadline))
	p := &rawPOP3{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	if _, err := p.status("greeting"); err != nil {
		return nil, err
	}
	if _, err := p.cmd("USER "+user, "USER"); err != nil {
		return nil, err
	}
	if _, err := p.cmd("PASS "+password, "PASS"); err != nil {
		return nil, err
	}
	stat, err := p.cmd("STAT", "STAT")
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(stat)
	if len(fields) < 1 {
		return nil, fmt.Errorf("STAT: malformed reply %q", stat)
	}
	count, err := strconv.Atoi(fields[0])
	if err != nil {
		return nil, fmt.Errorf("STAT: malformed reply %q", stat)
	}
	var msgs [][]byte
	for n := 1; n <= count; n++ {
		name := "RETR " + strconv.Itoa(n)
		if _, err := p.cmd(name, name); err != nil {
			return nil, err
		}
		body, err := p.body()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		msgs = append(msgs, body)
	}
	if _, err := p.cmd("QUIT", "QUIT"); err != nil {
		return nil, err
	}
	return msgs, nil
}

// rawPOP3 is the least POP3 client that can read a maildrop byte for byte.
type rawPOP3 struct {
	conn net.Conn
	r    *bufio.Reader
}

// cmd sends line and reads its status reply; name is what errors call the
// command (so PASS never shows the password).
func (p *rawPOP3) cmd(line, name string) (string, error) {
	if _, err := io.WriteString(p.conn, line+"\r\n"); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return p.status(name)
}

// status reads one status line and returns the text after "+OK".
func (p *rawPOP3) status(name string) (string, error) {
	line, err := p.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "+OK") {
		return "", fmt.Errorf("%s: server said %q", name, line)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "+OK")), nil
}

// body reads a multi-line response up to the terminating ".\r\n", removing
// the stuffed dot from lines that start with one. A line starts only after
// CRLF: a bare LF inside the data does not start one.
func (p *rawPOP3) body() ([]byte, error) {
	var buf bytes.Buffer
	atLineStart := true
	for {
		chunk, err := p.r.ReadBytes('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if atLineStart && chunk[0] == '.' {
			if bytes.Equal(chunk, []byte(".\r\n")) {
				return buf.Bytes(), nil
			}
			chunk = chunk[1:]
		}
		buf.Write(chunk)
		atLineStart = bytes.HasSuffix(chunk, []byte("\r\n"))
	}
}
