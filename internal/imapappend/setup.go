package imapappend

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
)

// Setup is an IMAP connection before login. Its commands run one at a
// time on the caller's goroutine, and return a NO or BAD as an
// *imap.Error. It sets no deadlines: the caller sets them on the
// connection. Once logged in, hand NetConn to NewClient and stop using the
// Setup.
type Setup struct {
	wire
	tag  int
	caps imap.CapSet // the capabilities last announced, for SASL-IR

	untagged   func(line string)
	onContinue func(text string) (string, error)
}

// NewSetup starts the conversation on conn, which is connected and, for
// implicit TLS, secured. Nothing is read or written until the first call.
func NewSetup(conn net.Conn) *Setup {
	s := &Setup{}
	s.setConn(conn)
	return s
}

// NetConn returns the connection: for a TLS handshake after StartTLS's
// command, for deadlines, and for NewClient after login. Bytes the server
// sent that were read ahead are served first.
func (s *Setup) NetConn() net.Conn {
	if s.br.Buffered() == 0 {
		return s.conn
	}
	return &bufferedConn{Conn: s.conn, r: s.br}
}

// Greeting reads the server's greeting and returns the capabilities it
// lists, or nil when it lists none. A greeting other than OK is an error:
// PREAUTH is not supported, and a BYE is returned as an *imap.Error.
func (s *Setup) Greeting() (imap.CapSet, error) {
	line, err := s.readLine()
	if err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(line, "* ")
	if !ok {
		return nil, fmt.Errorf("the server sent %q instead of a greeting", clip(line))
	}
	st, args, err := parseStatus(rest)
	if err != nil {
		return nil, err
	}
	switch st.Type {
	case imap.StatusResponseTypeOK:
	case imap.StatusResponseTypePreAuth:
		return nil, errors.New("the server is in state authenticated before login (PREAUTH is not supported)")
	default:
		return nil, (*imap.Error)(st)
	}
	if st.Code == codeCapability {
		s.caps = parseCaps(args)
		return s.caps, nil
	}
	return nil, nil
}

// StartTLS sends STARTTLS and, once the server agrees, runs handshake on
// the connection and goes on over the connection it returns. An error from
// handshake is returned as it is. The capabilities announced in plain text
// no longer count: ask again with Capability.
func (s *Setup) StartTLS(handshake func(net.Conn) (net.Conn, error)) error {
	if _, err := s.command("STARTTLS"); err != nil {
		return err
	}
	if s.br.Buffered() > 0 {
		return errors.New("the server sent data after its STARTTLS reply, before the TLS handshake")
	}
	tc, err := handshake(s.conn)
	if err != nil {
		return err
	}
	s.setConn(tc)
	s.caps = nil
	return nil
}

// Capability asks for the capabilities.
func (s *Setup) Capability() (imap.CapSet, error) {
	var caps imap.CapSet
	s.untagged = func(line string) {
		if rest, ok := cutPrefixFold(line, "CAPABILITY "); ok {
			caps = parseCaps(rest)
		}
	}
	defer func() { s.untagged = nil }()
	if _, err := s.command("CAPABILITY"); err != nil {
		return nil, err
	}
	if caps == nil {
		return nil, errors.New("no CAPABILITY reply")
	}
	s.caps = caps
	return caps, nil
}

// Login logs in with the LOGIN command. It returns the capabilities the
// server's reply lists, or nil when it lists none.
func (s *Setup) Login(username, password string) (imap.CapSet, error) {
	st, err := s.command("LOGIN", astring(username), astring(password))
	return s.capsAfter(st, err)
}

// Authenticate runs a SASL exchange (RFC 3501 section 6.2.2, with the
// initial response of RFC 4959 when the server offers SASL-IR). It returns
// the capabilities the server's final reply lists, or nil when it lists
// none.
func (s *Setup) Authenticate(client sasl.Client) (imap.CapSet, error) {
	mech, ir, err := client.Start()
	if err != nil {
		return nil, err
	}
	args := []any{mech}
	if ir != nil && s.caps.Has(imap.CapSASLIR) {
		args = append(args, encodeSASL(ir))
		ir = nil
	}
	s.onContinue = func(challenge string) (string, error) {
		if ir != nil {
			resp := base64.StdEncoding.EncodeToString(ir)
			ir = nil
			return resp, nil
		}
		b, err := base64.StdEncoding.DecodeString(challenge)
		if err != nil {
			return "", fmt.Errorf("bad challenge from the server: %w", err)
		}
		resp, err := client.Next(b)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(resp), nil
	}
	defer func() { s.onContinue = nil }()
	st, err := s.command("AUTHENTICATE", args...)
	return s.capsAfter(st, err)
}

func (s *Setup) capsAfter(st *imap.StatusResponse, err error) (imap.CapSet, error) {
	if err != nil {
		return nil, err
	}
	if st.Code == codeCapability {
		return s.caps, nil // set from the reply's code by next
	}
	return nil, nil
}

func encodeSASL(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

// astring is a command argument sent as a quoted string, or as a literal
// when quoting cannot carry it.
type astring string

// command runs one command and returns its tagged reply. Arguments are
// atoms (string) or astrings. A NO or BAD reply is returned as an
// *imap.Error.
func (s *Setup) command(name string, args ...any) (*imap.StatusResponse, error) {
	s.tag++
	tag := "S" + strconv.Itoa(s.tag)
	s.bw.WriteString(tag + " " + name)
	for _, a := range args {
		s.bw.WriteByte(' ')
		switch a := a.(type) {
		case string:
			s.bw.WriteString(a)
		case astring:
			if q, ok := quote(string(a)); ok {
				s.bw.WriteString(q)
				continue
			}
			fmt.Fprintf(s.bw, "{%d}\r\n", len(a))
			if err := s.bw.Flush(); err != nil {
				return nil, err
			}
			if _, st, err := s.next(tag); err != nil {
				return nil, err
			} else if st != nil {
				return nil, fmt.Errorf("the server ended %s before its literal", name)
			}
			s.bw.WriteString(string(a))
		}
	}
	s.bw.WriteString("\r\n")
	if err := s.bw.Flush(); err != nil {
		return nil, err
	}
	for {
		text, st, err := s.next(tag)
		if err != nil || st != nil {
			return st, err
		}
		if s.onContinue == nil {
			return nil, fmt.Errorf("unexpected continuation request in reply to %s", name)
		}
		resp, err := s.onContinue(text)
		if err != nil {
			// Cancel the exchange as RFC 3501 says, then report why.
			s.bw.WriteString("*\r\n")
			s.bw.Flush()
			return nil, err
		}
		s.bw.WriteString(resp + "\r\n")
		if err := s.bw.Flush(); err != nil {
			return nil, err
		}
	}
}

// next reads replies until a continuation request, whose text it returns,
// or the tagged reply to tag. An OK reply is returned as st, NO and BAD as
// an *imap.Error.
func (s *Setup) next(tag string) (text string, st *imap.StatusResponse, err error) {
	for {
		line, err := s.readLine()
		if err != nil {
			return "", nil, err
		}
		if text, ok := strings.CutPrefix(line, "+"); ok {
			return strings.TrimPrefix(text, " "), nil, nil
		}
		if rest, ok := strings.CutPrefix(line, "* "); ok {
			if st, _, err := parseStatus(rest); err == nil && st.Type == imap.StatusResponseTypeBye {
				return "", nil, (*imap.Error)(st)
			}
			if s.untagged != nil {
				s.untagged(rest)
			}
			continue
		}
		t, rest, _ := strings.Cut(line, " ")
		if t != tag {
			return "", nil, fmt.Errorf("reply for unknown command %q", clip(line))
		}
		st, args, err := parseStatus(rest)
		if err != nil {
			return "", nil, err
		}
		if st.Type != imap.StatusResponseTypeOK {
			return "", nil, (*imap.Error)(st)
		}
		if st.Code == codeCapability {
			s.caps = parseCaps(args)
		}
		return "", st, nil
	}
}

// bufferedConn is a connection whose first bytes were read ahead into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
