package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/pop2imap/pop2imap/pop3"
)

// appendConn is an IMAP connection that does nothing but APPEND, with
// several commands in flight at once.
//
// go-imap's client waits for the server's "+" before every literal over
// 4 KiB, which costs a round trip per message. When the server offers
// LITERAL+ (RFC 7888), appendConn sends non-synchronizing literals instead,
// so APPENDs stream back to back and the round trip is paid once per
// window of commands, not once per message. Without LITERAL+ it waits for
// "+" like any client.
//
// Login goes through the same mechanism choice and error reporting as
// DialIMAP; everything after login is APPEND and, for TRYCREATE, CREATE.
type appendConn struct {
	conn  net.Conn
	br    *bufio.Reader
	limit int64 // APPENDLIMIT, 0 when the server does not say

	wmu sync.Mutex // held while one command is written
	bw  *bufio.Writer

	mu      sync.Mutex
	caps    imap.CapSet
	tag     int
	pending map[string]chan reply
	cont    chan struct{} // a continuation request arrived
	bye     *imap.Error   // the server said BYE
	err     error         // why the connection ended; set once
	done    chan struct{} // closed when the connection ends

	// Before start, commands run one at a time on the caller's goroutine;
	// these see its untagged replies and continuation requests.
	untagged   func(line string)
	onContinue func(text string) (string, error)
}

// maxResponseLine bounds one line from the server. APPEND replies are
// short; a line longer than this is a server gone wrong.
const maxResponseLine = 64 << 10

// maxNonSyncLiteral is the largest message sent without waiting for "+".
// A server may have to drop the connection on a literal it cannot take,
// and for a message this large one round trip costs nothing next to the
// transfer.
const maxNonSyncLiteral = 16 << 20

// dialAppendConn connects, secures and logs in a connection for APPENDs.
func dialAppendConn(ctx context.Context, ep *Endpoint) (*appendConn, error) {
	return loginWithRefresh(ctx, ep, "imap", func(secret string) (*appendConn, error) {
		c, err := connectAppendConn(ctx, ep)
		if err != nil {
			return nil, err
		}
		if err := c.login(ep, secret); err != nil {
			c.conn.Close()
			return nil, err
		}
		c.start()
		return c, nil
	})
}

func connectAppendConn(ctx context.Context, ep *Endpoint) (*appendConn, error) {
	fail := func(op string, err error) error {
		return &ConnectError{Proto: "imap", Addr: ep.Addr, Op: op, Err: err}
	}
	conn, err := dialTCP(ctx, ep.Addr, ep.timeout())
	if err != nil {
		return nil, fail("dial", err)
	}
	if ep.TLS == TLSImplicit {
		tc, err := ep.handshake(ctx, conn)
		if err != nil {
			conn.Close()
			return nil, fail("tls", err)
		}
		conn = tc
	} else {
		conn = newGreetingConn(conn, "imap", ep.Addr)
	}
	c := &appendConn{conn: conn}
	c.setConn(conn)
	conn.SetDeadline(time.Now().Add(ep.timeout()))
	caps, err := c.greeting()
	if err != nil {
		conn.Close()
		return nil, fail("greeting", greetingError(conn, err))
	}
	if ep.TLS == TLSStartTLS {
		// As in connectIMAP, STARTTLS is sent whatever the greeting said.
		if _, err := c.command("STARTTLS"); err != nil {
			conn.Close()
			return nil, fail("tls", err)
		}
		if c.br.Buffered() > 0 {
			conn.Close()
			return nil, fail("tls", errors.New("the server sent data after its STARTTLS reply, before the TLS handshake"))
		}
		tc, err := ep.handshake(ctx, conn)
		if err != nil {
			conn.Close()
			return nil, fail("tls", err)
		}
		c.setConn(tc)
		caps = nil // what was said in plain text no longer counts
	}
	if caps == nil {
		if caps, err = c.capability(); err != nil {
			c.conn.Close()
			return nil, fail("capability", err)
		}
	}
	c.caps = caps
	c.conn.SetDeadline(time.Time{})
	return c, nil
}

func (c *appendConn) setConn(conn net.Conn) {
	c.conn = conn
	c.br = bufio.NewReaderSize(conn, 16<<10)
	c.bw = bufio.NewWriterSize(conn, 64<<10)
}

// greeting reads the server's greeting and returns the capabilities it
// lists, if any.
func (c *appendConn) greeting() (imap.CapSet, error) {
	line, err := c.readLine()
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
		return parseCaps(args), nil
	}
	return nil, nil
}

// capability asks for the capabilities.
func (c *appendConn) capability() (imap.CapSet, error) {
	var caps imap.CapSet
	c.untagged = func(line string) {
		if rest, ok := cutPrefixFold(line, "CAPABILITY "); ok {
			caps = parseCaps(rest)
		}
	}
	defer func() { c.untagged = nil }()
	if _, err := c.command("CAPABILITY"); err != nil {
		return nil, err
	}
	if caps == nil {
		return nil, errors.New("no CAPABILITY reply")
	}
	return caps, nil
}

// login logs in with the mechanism the endpoint forces or the best the
// server offers, exactly as loginIMAP chooses it.
func (c *appendConn) login(ep *Endpoint, secret string) error {
	fail := func(err error) error {
		return &ConnectError{Proto: "imap", Addr: ep.Addr, Op: "login", Err: redact(err, secret)}
	}
	mech, err := chooseIMAPMech(ep, c.caps)
	if err != nil {
		return fail(err)
	}
	if mech.sendsSecret() && !ep.secureLink() && !ep.AllowInsecureAuth {
		return ep.insecureAuthError("imap", mech)
	}
	c.conn.SetDeadline(time.Now().Add(ep.timeout()))
	defer c.conn.SetDeadline(time.Time{})
	var oauth *oauthRecorder
	var st *imap.StatusResponse
	switch mech {
	case AuthLogin:
		st, err = c.command("LOGIN", astring(ep.Username), astring(secret))
	case AuthPlain:
		st, err = c.authenticate(sasl.NewPlainClient("", ep.Username, secret))
	default:
		oauth = newOAuthClient(ep, mech, secret, false)
		st, err = c.authenticate(oauth)
	}
	if err != nil {
		return loginError(err, ep, mech, c.caps, oauth, secret)
	}
	if st.Code == codeCapability {
		return nil // caps were set from the reply's code by command
	}
	if c.caps, err = c.capability(); err != nil {
		return fail(err)
	}
	return nil
}

// authenticate runs a SASL exchange (RFC 3501 section 6.2.2, with the
// initial response of RFC 4959 when the server offers SASL-IR).
func (c *appendConn) authenticate(client pop3.SASLClient) (*imap.StatusResponse, error) {
	mech, ir, err := client.Start()
	if err != nil {
		return nil, err
	}
	args := []any{mech}
	if ir != nil && c.caps.Has(imap.CapSASLIR) {
		args = append(args, encodeSASL(ir))
		ir = nil
	}
	c.onContinue = func(challenge string) (string, error) {
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
	defer func() { c.onContinue = nil }()
	return c.command("AUTHENTICATE", args...)
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

// command runs one command before start, on the caller's goroutine, and
// returns its tagged reply. Arguments are atoms (string) or astrings.
// A NO or BAD reply is returned as an *imap.Error.
func (c *appendConn) command(name string, args ...any) (*imap.StatusResponse, error) {
	c.tag++
	tag := "P" + strconv.Itoa(c.tag)
	c.bw.WriteString(tag + " " + name)
	for _, a := range args {
		c.bw.WriteByte(' ')
		switch a := a.(type) {
		case string:
			c.bw.WriteString(a)
		case astring:
			if q, ok := quote(string(a)); ok {
				c.bw.WriteString(q)
				continue
			}
			fmt.Fprintf(c.bw, "{%d}\r\n", len(a))
			if err := c.bw.Flush(); err != nil {
				return nil, err
			}
			if _, st, err := c.next(tag); err != nil {
				return nil, err
			} else if st != nil {
				return nil, fmt.Errorf("the server ended %s before its literal", name)
			}
			c.bw.WriteString(string(a))
		}
	}
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	for {
		text, st, err := c.next(tag)
		if err != nil || st != nil {
			return st, err
		}
		if c.onContinue == nil {
			return nil, fmt.Errorf("unexpected continuation request in reply to %s", name)
		}
		resp, err := c.onContinue(text)
		if err != nil {
			// Cancel the exchange as RFC 3501 says, then report why.
			c.bw.WriteString("*\r\n")
			c.bw.Flush()
			return nil, err
		}
		c.bw.WriteString(resp + "\r\n")
		if err := c.bw.Flush(); err != nil {
			return nil, err
		}
	}
}

// next reads replies until a continuation request, whose text it returns,
// or the tagged reply to tag. An OK reply is returned as st, NO and BAD as
// an *imap.Error.
func (c *appendConn) next(tag string) (text string, st *imap.StatusResponse, err error) {
	for {
		line, err := c.readLine()
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
			if c.untagged != nil {
				c.untagged(rest)
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
			c.caps = parseCaps(args)
		}
		return "", st, nil
	}
}

// reply is a tagged reply and the arguments of its response code.
type reply struct {
	st   *imap.StatusResponse
	args string
}

// start hands the connection to a goroutine that reads the replies, so that
// several commands can be in flight.
func (c *appendConn) start() {
	c.limit = appendLimit(c.caps)
	c.pending = map[string]chan reply{}
	c.cont = make(chan struct{}, 1)
	c.done = make(chan struct{})
	go c.readLoop()
}

func (c *appendConn) readLoop() {
	for {
		line, err := c.readLine()
		if err != nil {
			c.fail(err)
			return
		}
		if strings.HasPrefix(line, "+") {
			select {
			case c.cont <- struct{}{}:
			default:
			}
			continue
		}
		if rest, ok := strings.CutPrefix(line, "* "); ok {
			// EXISTS, RECENT and the like say nothing about an APPEND.
			if st, _, err := parseStatus(rest); err == nil && st.Type == imap.StatusResponseTypeBye {
				c.mu.Lock()
				c.bye = (*imap.Error)(st)
				c.mu.Unlock()
			}
			continue
		}
		tag, rest, _ := strings.Cut(line, " ")
		st, args, err := parseStatus(rest)
		if err != nil {
			c.fail(err)
			return
		}
		c.mu.Lock()
		ch := c.pending[tag]
		delete(c.pending, tag)
		c.mu.Unlock()
		if ch == nil {
			c.fail(fmt.Errorf("reply for unknown command %q", clip(line)))
			return
		}
		ch <- reply{st, args}
	}
}

// fail ends the connection; every command still waiting gets err, along
// with the server's BYE when it said one.
func (c *appendConn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		if c.bye != nil {
			c.err = fmt.Errorf("%w (%w)", c.bye, err)
		}
		close(c.done)
	}
	c.mu.Unlock()
	c.conn.Close()
}

func (c *appendConn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// roundTrip runs one command: write sends it under the write lock and may
// end early with the server's reply (a refusal before a literal). If no
// reply comes within d, the connection is closed and the outcome is unknown.
func (c *appendConn) roundTrip(d time.Duration, write func(tag string, ch chan reply) (*reply, error)) (reply, error) {
	r, _, err := c.timedRoundTrip(d, write)
	return r, err
}

// timedRoundTrip is roundTrip that also returns how long the reply took
// from the moment the command was out: the link's round trip plus the
// server's time for it and for the commands before it. It is 0 for a reply
// that came before the command was out.
func (c *appendConn) timedRoundTrip(d time.Duration, write func(tag string, ch chan reply) (*reply, error)) (reply, time.Duration, error) {
	ch := make(chan reply, 1)
	c.wmu.Lock()
	// The clock starts once it is this command's turn: the wait for another
	// one's large literal to go out is not the server's delay.
	timer := time.AfterFunc(d, func() { c.fail(fmt.Errorf("no reply within %v: %w", d, os.ErrDeadlineExceeded)) })
	defer timer.Stop()
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		c.wmu.Unlock()
		return reply{}, 0, err
	}
	c.tag++
	tag := "P" + strconv.Itoa(c.tag)
	c.pending[tag] = ch
	c.mu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(d))
	early, err := write(tag, ch)
	if err == nil && early == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
		return reply{}, 0, err
	}
	if early != nil {
		return *early, 0, nil
	}
	sent := time.Now()
	select {
	case r := <-ch:
		return r, time.Since(sent), nil
	case <-c.done:
		select {
		case r := <-ch:
			return r, time.Since(sent), nil
		default:
			return reply{}, 0, c.failure()
		}
	}
}

// Noop sends NOOP and returns how long its reply took: the link's round
// trip, as near as a command can measure it. written, when not nil, is
// called once the command is queued, with the connection's write lock
// still held, so that no command started after it can go out before it.
func (c *appendConn) Noop(timeout time.Duration, written func()) (time.Duration, error) {
	rep, rtt, err := c.timedRoundTrip(timeout, func(tag string, _ chan reply) (*reply, error) {
		_, err := c.bw.WriteString(tag + " NOOP\r\n")
		if written != nil {
			written()
		}
		return nil, err
	})
	if err != nil {
		return 0, fmt.Errorf("imap: NOOP: %w", err)
	}
	if rep.st.Type != imap.StatusResponseTypeOK {
		return 0, fmt.Errorf("imap: NOOP: %w", (*imap.Error)(rep.st))
	}
	return rtt, nil
}

// Append stores the spooled message in folder and returns its UID when the
// server tells it (UIDPLUS). A NO or BAD reply is an *imap.Error; any other
// error leaves the outcome unknown.
func (c *appendConn) Append(folder string, sp *spool, opts *imap.AppendOptions, timeout time.Duration) (*imap.AppendData, error) {
	if c.limit > 0 && sp.size > c.limit {
		// Not sent at all: the server announced it would refuse it.
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig,
			Text: fmt.Sprintf("the message is %d bytes, over the server's APPENDLIMIT of %d", sp.size, c.limit)}
	}
	r, err := sp.Reader()
	if err != nil {
		return nil, err
	}
	nonSync := sp.size <= maxNonSyncLiteral &&
		(c.caps.Has(imap.CapLiteralPlus) || c.caps.Has(imap.CapLiteralMinus) && sp.size <= 4096)
	// Allow for slow links: the timeout plus a second per 100 KB.
	d := timeout + time.Duration(sp.size/100_000)*time.Second
	rep, err := c.roundTrip(d, func(tag string, ch chan reply) (*reply, error) {
		c.bw.WriteString(tag + " APPEND " + quoteMailbox(folder))
		if opts != nil && len(opts.Flags) > 0 {
			flags := make([]string, len(opts.Flags))
			for i, f := range opts.Flags {
				flags[i] = string(f)
			}
			c.bw.WriteString(" (" + strings.Join(flags, " ") + ")")
		}
		if opts != nil && !opts.Time.IsZero() {
			c.bw.WriteString(` "` + opts.Time.Format(imapDateTime) + `"`)
		}
		if nonSync {
			fmt.Fprintf(c.bw, " {%d+}\r\n", sp.size)
		} else {
			fmt.Fprintf(c.bw, " {%d}\r\n", sp.size)
			if err := c.bw.Flush(); err != nil {
				return nil, err
			}
			select {
			case <-c.cont:
			case r := <-ch: // refused before the literal
				return &r, nil
			case <-c.done:
				return nil, c.failure()
			}
		}
		if _, err := io.Copy(c.bw, r); err != nil {
			return nil, err
		}
		_, err := c.bw.WriteString("\r\n")
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	if rep.st.Type != imap.StatusResponseTypeOK {
		return nil, (*imap.Error)(rep.st)
	}
	data := &imap.AppendData{}
	if rep.st.Code == codeAppendUID {
		f := strings.Fields(rep.args)
		if len(f) == 2 {
			v, err1 := strconv.ParseUint(f[0], 10, 32)
			u, err2 := strconv.ParseUint(f[1], 10, 32)
			if err1 == nil && err2 == nil {
				data.UIDValidity, data.UID = uint32(v), imap.UID(u)
			}
		}
	}
	return data, nil
}

// Create creates folder, for an APPEND refused with TRYCREATE. A folder
// that already exists is not an error.
func (c *appendConn) Create(folder string, timeout time.Duration) error {
	rep, err := c.roundTrip(timeout, func(tag string, _ chan reply) (*reply, error) {
		_, err := c.bw.WriteString(tag + " CREATE " + quoteMailbox(folder) + "\r\n")
		return nil, err
	})
	if err != nil {
		return fmt.Errorf("imap: CREATE %q: %w", folder, err)
	}
	if rep.st.Type != imap.StatusResponseTypeOK && rep.st.Code != imap.ResponseCodeAlreadyExists {
		return fmt.Errorf("imap: CREATE %q: %w", folder, (*imap.Error)(rep.st))
	}
	return nil
}

// Close logs out, without waiting for the reply, and closes the connection.
// It does not wait for a command being written: that one fails.
func (c *appendConn) Close() {
	if c.wmu.TryLock() {
		if c.failure() == nil {
			c.conn.SetWriteDeadline(time.Now().Add(time.Second))
			c.bw.WriteString("L LOGOUT\r\n")
			c.bw.Flush()
		}
		c.wmu.Unlock()
	}
	c.fail(net.ErrClosed)
}

// appendLimit returns the largest message a server with caps takes (RFC
// 7889 APPENDLIMIT), or 0 when it does not say.
func appendLimit(caps imap.CapSet) int64 {
	for cp := range caps {
		if v, ok := cutPrefixFold(string(cp), "APPENDLIMIT="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

// Response codes go-imap does not name.
const (
	codeCapability imap.ResponseCode = "CAPABILITY"
	codeAppendUID  imap.ResponseCode = "APPENDUID"
)

// imapDateTime is the layout of an IMAP date-time (RFC 3501 section 9).
const imapDateTime = "_2-Jan-2006 15:04:05 -0700"

// readLine reads one reply line without its line ending. A literal at the
// end of a line is skipped, and the line goes on after it.
func (c *appendConn) readLine() (string, error) {
	var line []byte
	for {
		b, err := c.br.ReadSlice('\n')
		if len(line)+len(b) > maxResponseLine {
			return "", fmt.Errorf("a reply line longer than %d KiB", maxResponseLine>>10)
		}
		line = append(line, b...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		line = bytes.TrimRight(line, "\r\n")
		if n, ok := trailingLiteral(line); ok {
			if _, err := io.CopyN(io.Discard, c.br, n); err != nil {
				return "", err
			}
			continue
		}
		return string(line), nil
	}
}

// trailingLiteral reports the size of a literal announced at the end of a
// line, as in "* 1 FETCH (BODY[] {42}".
func trailingLiteral(line []byte) (int64, bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(line[i+1:len(line)-1]), 10, 64)
	return n, err == nil && n >= 0
}

// parseStatus parses "OK [CODE args] text" and its kin.
func parseStatus(s string) (st *imap.StatusResponse, args string, err error) {
	word, rest, _ := strings.Cut(s, " ")
	t := imap.StatusResponseType(strings.ToUpper(word))
	switch t {
	case imap.StatusResponseTypeOK, imap.StatusResponseTypeNo, imap.StatusResponseTypeBad,
		imap.StatusResponseTypePreAuth, imap.StatusResponseTypeBye:
	default:
		return nil, "", fmt.Errorf("unexpected reply %q", clip(s))
	}
	st = &imap.StatusResponse{Type: t, Text: rest}
	if inner, ok := strings.CutPrefix(rest, "["); ok {
		if end := strings.IndexByte(inner, ']'); end >= 0 {
			code, a, _ := strings.Cut(inner[:end], " ")
			st.Code = imap.ResponseCode(strings.ToUpper(code))
			args = a
			st.Text = strings.TrimPrefix(inner[end+1:], " ")
		}
	}
	return st, args, nil
}

func parseCaps(s string) imap.CapSet {
	caps := imap.CapSet{}
	for _, f := range strings.Fields(s) {
		caps[imap.Cap(f)] = struct{}{}
		caps[imap.Cap(strings.ToUpper(f))] = struct{}{}
	}
	return caps
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// clip shortens a server's line for an error message.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

// quote returns s as an IMAP quoted string, or false when it needs a
// literal.
func quote(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c == '\r' || c == '\n' || c >= 0x80 {
			return "", false
		}
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`, true
}

// quoteMailbox encodes a folder name in modified UTF-7 (RFC 3501 section
// 5.1.3), as go-imap does for the other connection, and quotes it.
func quoteMailbox(name string) string {
	var b strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		u := utf16.Encode(run)
		buf := make([]byte, 2*len(u))
		for i, x := range u {
			buf[2*i], buf[2*i+1] = byte(x>>8), byte(x)
		}
		b.WriteByte('&')
		b.WriteString(mutf7.EncodeToString(buf))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r > 0x7e:
			run = append(run, r)
		case r == '&':
			flush()
			b.WriteString("&-")
		default:
			flush()
			b.WriteRune(r)
		}
	}
	flush()
	q, _ := quote(b.String())
	return q
}

var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)
