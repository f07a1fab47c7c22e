package dovecottest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// rawIMAP is the least IMAP client the helpers need: LOGIN, EXAMINE,
// UID FETCH BODY.PEEK[], APPEND, LOGOUT. It is written here, on the standard
// library, so that the harness does not share code (or bugs) with the IMAP
// side of the tool it checks.
type rawIMAP struct {
	conn net.Conn
	r    *bufio.Reader
	tag  int
}

// imapResponse is one response with its literals taken out: Text is the
// response as sent with each literal's bytes removed (the "{N}" stays), and
// Literals are those bytes in order.
type imapResponse struct {
	Text     string
	Literals [][]byte
}

// imapStatusError is a tagged NO or BAD.
type imapStatusError struct {
	Command string
	Status  string // "NO" or "BAD"
	Code    string // the response code without brackets and arguments, e.g. "NONEXISTENT"
	Text    string // the whole text after the status
}

func (e *imapStatusError) Error() string {
	return fmt.Sprintf("%s: %s %s", e.Command, e.Status, e.Text)
}

// dialIMAP connects to addr (over TLS when config is not nil), bounds the
// whole session by deadline (zero: none) and reads the greeting.
func dialIMAP(addr string, config *tls.Config, deadline time.Time) (*rawIMAP, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("IMAP dial %s: %w", addr, err)
	}
	conn.SetDeadline(deadline)
	if config != nil {
		tc := tls.Client(conn, config)
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("IMAP TLS handshake with %s: %w", addr, err)
		}
		conn = tc
	}
	c := &rawIMAP{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	greeting, err := c.readResponse()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("IMAP greeting: %w", err)
	}
	if !strings.HasPrefix(greeting.Text, "* OK") {
		conn.Close()
		return nil, fmt.Errorf("IMAP greeting: %q", greeting.Text)
	}
	return c, nil
}

func (c *rawIMAP) Close() error { return c.conn.Close() }

// imapArg is a command argument: imapAtom goes out as is, []byte as a
// (synchronizing) literal, string as a quoted string or, when it cannot be
// quoted, a literal.
type imapAtom string

// run sends one command and returns its untagged responses, or an error
// (*imapStatusError for NO and BAD). name is what errors call the command.
func (c *rawIMAP) run(name string, args ...any) ([]imapResponse, error) {
	c.tag++
	tag := "t" + strconv.Itoa(c.tag)
	var untagged []imapResponse
	line := []byte(tag)
	for _, arg := range args {
		line = append(line, ' ')
		var lit []byte
		switch a := arg.(type) {
		case imapAtom:
			line = append(line, a...)
			continue
		case []byte:
			lit = a
		case string:
			if q, ok := quoteIMAP(a); ok {
				line = append(line, q...)
				continue
			}
			lit = []byte(a)
		default:
			panic(fmt.Sprintf("dovecottest: IMAP argument of type %T", arg))
		}
		// A synchronizing literal: the server must say "+" before the
		// bytes, and may refuse instead (too big, bad mailbox).
		line = fmt.Appendf(line, "{%d}\r\n", len(lit))
		if _, err := c.conn.Write(line); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line = nil
		for {
			resp, err := c.readResponse()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if strings.HasPrefix(resp.Text, "+") {
				break
			}
			if strings.HasPrefix(resp.Text, tag+" ") {
				return untagged, statusError(name, tag, resp.Text)
			}
			untagged = append(untagged, resp)
		}
		if _, err := c.conn.Write(lit); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	line = append(line, "\r\n"...)
	if _, err := c.conn.Write(line); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for {
		resp, err := c.readResponse()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if strings.HasPrefix(resp.Text, tag+" ") {
			return untagged, statusError(name, tag, resp.Text)
		}
		untagged = append(untagged, resp)
	}
}

var literalAtEnd = regexp.MustCompile(`~?\{(\d+)\}\r\n$`)

// readResponse reads one response line, with any literals it contains.
func (c *rawIMAP) readResponse() (imapResponse, error) {
	var resp imapResponse
	var text strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return resp, err
		}
		m := literalAtEnd.FindStringSubmatch(line)
		if m == nil {
			text.WriteString(strings.TrimSuffix(line, "\r\n"))
			resp.Text = text.String()
			return resp, nil
		}
		text.WriteString(strings.TrimSuffix(line, "\r\n"))
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return resp, fmt.Errorf("literal size in %q: %w", line, err)
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(c.r, lit); err != nil {
			return resp, fmt.Errorf("reading a %d-byte literal: %w", n, err)
		}
		resp.Literals = append(resp.Literals, lit)
	}
}

var respCode = regexp.MustCompile(`^\[([^\] ]+)`)

// statusError turns a tagged response into nil (OK) or an *imapStatusError.
func statusError(name, tag, line string) error {
	rest := strings.TrimPrefix(line, tag+" ")
	status, text, _ := strings.Cut(rest, " ")
	if status == "OK" {
		return nil
	}
	e := &imapStatusError{Command: name, Status: status, Text: text}
	if m := respCode.FindStringSubmatch(text); m != nil {
		e.Code = m[1]
	}
	return e
}

// quoteIMAP returns s as an IMAP quoted string, or false when it holds bytes
// a quoted string cannot carry (8-bit, CR, LF, NUL).
func quoteIMAP(s string) (string, bool) {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == 0 || ch == '\r' || ch == '\n' || ch >= 0x80:
			return "", false
		case ch == '"' || ch == '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(ch)
	}
	b.WriteByte('"')
	return b.String(), true
}

// login sends LOGIN. Dovecot's LOGIN takes literals, so any password works.
func (c *rawIMAP) login(user, password string) error {
	_, err := c.run("LOGIN "+user, imapAtom("LOGIN"), user, password)
	return err
}

// logout sends LOGOUT and closes the connection.
func (c *rawIMAP) logout() error {
	defer c.Close()
	_, err := c.run("LOGOUT", imapAtom("LOGOUT"))
	return err
}

// appendMessage APPENDs msg to mailbox and returns the server's refusal, if
// any, as an *imapStatusError.
func (c *rawIMAP) appendMessage(mailbox string, msg []byte) error {
	_, err := c.run("APPEND", imapAtom("APPEND"), imapAtom(mailboxName(mailbox)), msg)
	return err
}

var fetchUID = regexp.MustCompile(`[( ]UID (\d+)`)

// fetchAll EXAMINEs mailbox and returns every message's BODY[] in UID order;
// a mailbox that does not exist gives nil.
func (c *rawIMAP) fetchAll(mailbox string) ([][]byte, error) {
	// Dovecot 2.3 refuses EXAMINE of a missing mailbox without the
	// NONEXISTENT code, so ask LIST first instead of matching its text.
	exists, err := c.exists(mailbox)
	if err != nil || !exists {
		return nil, err
	}
	if _, err := c.run("EXAMINE", imapAtom("EXAMINE"), imapAtom(mailboxName(mailbox))); err != nil {
		return nil, err
	}
	resps, err := c.run("UID FETCH 1:* BODY.PEEK[]", imapAtom("UID FETCH 1:* (UID BODY.PEEK[])"))
	if err != nil {
		return nil, err
	}
	type message struct {
		uid  uint64
		body []byte
	}
	var msgs []message
	for _, r := range resps {
		if !strings.Contains(r.Text, " FETCH (") {
			continue
		}
		m := fetchUID.FindStringSubmatch(r.Text)
		if m == nil || !strings.Contains(r.Text, "BODY[] ") || len(r.Literals) != 1 {
			return nil, fmt.Errorf("UID FETCH: unexpected response %q with %d literals", r.Text, len(r.Literals))
		}
		uid, _ := strconv.ParseUint(m[1], 10, 32)
		msgs = append(msgs, message{uid, r.Literals[0]})
	}
	var out [][]byte
	var last uint64
	for _, m := range msgs {
		// Dovecot answers in UID order; check rather than sort, since
		// anything else would be worth knowing.
		if m.uid <= last {
			return nil, fmt.Errorf("UID FETCH: UID %d after %d", m.uid, last)
		}
		last = m.uid
		out = append(out, m.body)
	}
	return out, nil
}

// exists reports whether mailbox can be selected, by LIST.
func (c *rawIMAP) exists(mailbox string) (bool, error) {
	resps, err := c.run("LIST", imapAtom("LIST"), imapAtom(`""`), imapAtom(mailboxName(mailbox)))
	if err != nil {
		return false, err
	}
	for _, r := range resps {
		rest, ok := strings.CutPrefix(r.Text, "* LIST (")
		if !ok {
			continue
		}
		attrs, _, _ := strings.Cut(strings.ToLower(rest), ")")
		if !strings.Contains(attrs, `\noselect`) && !strings.Contains(attrs, `\nonexistent`) {
			return true, nil
		}
	}
	return false, nil
}

// mailboxName encodes a mailbox name for the wire: modified UTF-7 (RFC 3501
// 5.1.3, since Dovecot 2.3 has no UTF8=ACCEPT), then quoted.
func mailboxName(name string) string {
	var b strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		var raw bytes.Buffer
		for _, u := range utf16.Encode(run) {
			raw.WriteByte(byte(u >> 8))
			raw.WriteByte(byte(u))
		}
		b.WriteByte('&')
		b.WriteString(modifiedBase64(raw.Bytes()))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range name {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		run = append(run, r)
	}
	flush()
	q, _ := quoteIMAP(b.String())
	return q
}

// modifiedBase64 is base64 with ',' for '/' and no padding.
func modifiedBase64(data []byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"
	var b strings.Builder
	for i := 0; i < len(data); i += 3 {
		chunk := data[i:min(i+3, len(data))]
		var v uint32
		for j := 0; j < 3; j++ {
			v <<= 8
			if j < len(chunk) {
				v |= uint32(chunk[j])
			}
		}
		for j := 0; j <= len(chunk); j++ {
			b.WriteByte(alphabet[(v>>(18-6*j))&0x3f])
		}
	}
	return b.String()
}
