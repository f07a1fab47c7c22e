// Package pop3 is a POP3 client (RFC 1939) that runs on a net.Conn.
//
// It speaks the extensions a mail mover needs: CAPA (RFC 2449), response
// codes (RFC 2449, RFC 3206), STLS (RFC 2595), AUTH with SASL (RFC 5034,
// RFC 7628 and the XOAUTH2 variant), APOP, and command pipelining.
//
// Message bodies stream: Retr and Top return an io.Reader that hands back the
// message exactly as the server stored it, byte for byte, with only the
// transport dot-stuffing removed. See Retr for the precise rule.
//
// A server's refusal is an *Error carrying the response code; garbage on the
// wire is a *ProtocolError; a failed read or write wraps the net error. Every
// error text begins "pop3: COMMAND:" and never contains a password, an APOP
// digest or a SASL payload.
//
// A Client is not safe for concurrent use.
package pop3

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Options tune a Client. The zero value (or a nil *Options) is usable.
type Options struct {
	// Timeout bounds each command: sending it and receiving its reply. While
	// a message body or a multi-line listing streams, the read deadline is
	// pushed forward whenever more data is needed, so a long transfer is cut
	// only when the server goes silent for Timeout. 0 means 60s; a negative
	// value disables deadlines.
	Timeout time.Duration

	// MaxLineLength bounds one response line in bytes, not counting its
	// line ending. A longer line is a *ProtocolError. 0 means 8192.
	// It does not apply to message bodies, whose lines may be any length.
	MaxLineLength int

	// Debug, if set, receives a trace of the conversation: "C: " lines the
	// client sent and "S: " lines the server sent. Message bodies appear as
	// their size only. PASS arguments, APOP digests and AUTH payloads are
	// shown as <redacted>.
	Debug io.Writer
}

const (
	defaultTimeout       = 60 * time.Second
	defaultMaxLineLength = 8192

	// readBufferSize is the only buffer a body passes through, whatever the
	// length of its lines.
	readBufferSize = 64 << 10

	// maxWindow caps pipelined commands in flight. Each is under 20 bytes, so
	// the unsent bytes always fit in the socket buffers even when the server
	// is busy writing replies and not reading; writes can never deadlock.
	maxWindow = 256
)

// Bounds on multi-line replies, so that a hostile server cannot make the
// client's memory grow without limit. Variables so tests can lower them.
var (
	maxListLines       = 10_000_000 // LIST and UIDL lines
	maxListBytes int64 = 64 << 20   // LIST and UIDL bytes, whatever STAT said
	maxCapaLines       = 1000
	maxAuthSteps       = 32 // SASL challenges in one AUTH exchange
)

var errInCallback = errors.New("client used from inside the RetrAll callback")

// Client is a POP3 session. Create one with NewClient, Dial or DialTLS.
type Client struct {
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
	maxLine int
	debug   io.Writer

	host      string // host name Dial was given, for verifying STLS
	isTLS     bool
	timestamp string // APOP timestamp from the greeting

	caps    *Capabilities
	capsErr error // the server's -ERR to CAPA, cached like caps

	body       *bodyReader // the last body handed out, until the next command
	err        error       // set once the wire is out of sync or broken
	closed     bool
	inCallback bool

	// statCount is the message count STAT reported, or -1 before STAT.
	statCount int

	// hide is the secret of the login command under way. A server may echo
	// what it was sent, so the secret is cut from its replies before they
	// reach an error or the Debug trace.
	hide string
}

// NewClient starts a session on conn: it reads the server's greeting and
// keeps the APOP timestamp if there is one. If the greeting is not "+OK",
// NewClient closes conn and returns the error.
func NewClient(conn net.Conn, opts *Options) (*Client, error) {
	return newClient(conn, opts, readBufferSize)
}

// newClient lets tests shrink the read buffer to put its edges everywhere.
func newClient(conn net.Conn, opts *Options, bufSize int) (*Client, error) {
	c := &Client{
		conn:      conn,
		r:         bufio.NewReaderSize(conn, bufSize),
		w:         bufio.NewWriter(conn),
		timeout:   defaultTimeout,
		statCount: -1,
		maxLine:   defaultMaxLineLength,
	}
	if opts != nil {
		if opts.Timeout != 0 {
			c.timeout = opts.Timeout
		}
		if opts.MaxLineLength > 0 {
			c.maxLine = opts.MaxLineLength
		}
		c.debug = opts.Debug
	}
	_, c.isTLS = conn.(*tls.Conn)
	c.setDeadline()
	text, err := c.readStatus("greeting")
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.timestamp = apopTimestamp(text)
	return c, nil
}

// Dial connects to addr ("host:port", usually port 110) in plain text and
// starts a session. Use StartTLS next unless the network is trusted.
func Dial(ctx context.Context, addr string, opts *Options) (*Client, error) {
	d := net.Dialer{Timeout: dialTimeout(opts)}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3: %w", err)
	}
	c, err := NewClient(conn, opts)
	if err != nil {
		return nil, err
	}
	c.host = hostOf(addr)
	return c, nil
}

// DialTLS connects to addr ("host:port", usually port 995) with implicit
// TLS and starts a session. If config has no ServerName, the host from addr
// is verified.
func DialTLS(ctx context.Context, addr string, config *tls.Config, opts *Options) (*Client, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout(opts)}, Config: config}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3: %w", err)
	}
	c, err := NewClient(conn, opts)
	if err != nil {
		return nil, err
	}
	c.host = hostOf(addr)
	return c, nil
}

func dialTimeout(opts *Options) time.Duration {
	if opts == nil || opts.Timeout == 0 {
		return defaultTimeout
	}
	if opts.Timeout < 0 {
		return 0
	}
	return opts.Timeout
}

func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return host
}

// apopTimestamp returns the "<...>" part of a greeting (RFC 1939 section 7),
// angle brackets included, as the APOP digest covers them.
func apopTimestamp(greeting string) string {
	i := strings.IndexByte(greeting, '<')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(greeting[i:], '>')
	if j < 2 {
		return ""
	}
	ts := greeting[i : i+j+1]
	if strings.ContainsAny(ts[1:len(ts)-1], " \t<") {
		return ""
	}
	return ts
}

// StartTLS upgrades the session with STLS (RFC 2595). The server's
// certificate is verified against config.ServerName or, when that is empty,
// the host given to Dial. Bytes the server sends after its "+OK" but before
// the handshake can only be an injection by a man in the middle, so they
// make StartTLS fail and close the connection. Capabilities are asked again
// over TLS, since those seen in plain text could have been forged.
func (c *Client) StartTLS(config *tls.Config) error {
	const label = "STLS"
	if c.isTLS {
		return fmt.Errorf("pop3: %s: connection already uses TLS", label)
	}
	var cfg *tls.Config
	if config != nil {
		cfg = config.Clone()
	} else {
		cfg = new(tls.Config)
	}
	if cfg.ServerName == "" {
		cfg.ServerName = c.host
	}
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		return fmt.Errorf("pop3: %s: no host name to verify the certificate against: set tls.Config.ServerName", label)
	}
	if _, err := c.cmd(label, "STLS", ""); err != nil {
		return err
	}
	if n := c.r.Buffered(); n > 0 {
		err := c.fail(&ProtocolError{Command: label, Msg: fmt.Sprintf("server sent %d bytes after +OK before the TLS handshake (possible plaintext injection)", n)})
		c.conn.Close()
		return err
	}
	tconn := tls.Client(c.conn, cfg)
	c.setDeadline()
	if err := tconn.Handshake(); err != nil {
		c.conn.Close()
		return c.fail(fmt.Errorf("pop3: %s: TLS handshake: %w", label, err))
	}
	c.conn = tconn
	c.r.Reset(tconn)
	c.w.Reset(tconn)
	c.isTLS = true
	c.forgetCapabilities()
	if _, err := c.Capabilities(); err != nil {
		var perr *Error
		if !errors.As(err, &perr) {
			return err
		}
	}
	return nil
}

// Capabilities returns the server's CAPA reply (RFC 2449). It is asked once
// and cached until STLS or a successful login, after which servers may
// announce more. A server that does not know CAPA returns an *Error.
func (c *Client) Capabilities() (*Capabilities, error) {
	if c.caps == nil && c.capsErr == nil {
		var lines []string
		err := c.multiCmd("CAPA", "CAPA", maxCapaLines, func(line []byte) error {
			lines = append(lines, string(line))
			return nil
		})
		var perr *Error
		switch {
		case err == nil:
			c.caps = parseCapa(lines)
		case errors.As(err, &perr):
			c.capsErr = err
		default:
			return nil, err
		}
	}
	if c.capsErr != nil {
		return nil, c.capsErr
	}
	return c.caps.clone(), nil
}

func (c *Client) forgetCapabilities() {
	c.caps, c.capsErr = nil, nil
}

// pipelining reports whether the server announced PIPELINING. A server that
// refuses CAPA does not pipeline.
func (c *Client) pipelining() (bool, error) {
	caps, err := c.Capabilities()
	if err != nil {
		var perr *Error
		if errors.As(err, &perr) {
			return false, nil
		}
		return false, err
	}
	return caps.Pipelining, nil
}

// APOPTimestamp returns the timestamp of the server's greeting, angle
// brackets included, or "" if the greeting had none (and APOP cannot work).
func (c *Client) APOPTimestamp() string {
	return c.timestamp
}

// User sends USER name.
func (c *Client) User(name string) error {
	if err := checkArg("USER", name); err != nil {
		return err
	}
	_, err := c.cmd("USER", "USER "+name, "")
	return err
}

// Pass sends PASS password. The password never appears in errors or in the
// Debug trace.
func (c *Client) Pass(password string) error {
	if err := checkArg("PASS", password); err != nil {
		return err
	}
	err := c.hiding(password, func() error {
		_, err := c.cmd("PASS", "PASS "+password, "PASS <redacted>")
		return err
	})
	if err != nil {
		return err
	}
	c.forgetCapabilities()
	return nil
}

// Login logs in with USER and PASS.
func (c *Client) Login(user, password string) error {
	if err := checkArg("PASS", password); err != nil {
		return err
	}
	if err := c.User(user); err != nil {
		return err
	}
	return c.Pass(password)
}

// APOP logs in with APOP (RFC 1939 section 7): the secret itself is not
// sent, only the MD5 digest of the greeting's timestamp followed by secret.
func (c *Client) APOP(user, secret string) error {
	const label = "APOP"
	if err := checkArg(label, user); err != nil {
		return err
	}
	if c.timestamp == "" {
		return fmt.Errorf("pop3: %s: the server's greeting has no timestamp, so it does not offer APOP", label)
	}
	sum := md5.Sum([]byte(c.timestamp + secret))
	digest := hex.EncodeToString(sum[:])
	err := c.hiding(digest, func() error {
		_, err := c.cmd(label, "APOP "+user+" "+digest, "APOP "+user+" <redacted>")
		return err
	})
	if err != nil {
		return err
	}
	c.forgetCapabilities()
	return nil
}

// Stat returns the number of messages in the maildrop and their total size
// in octets (as the server counts them, with CRLF line endings).
func (c *Client) Stat() (count int, size int64, err error) {
	const label = "STAT"
	text, err := c.cmd(label, "STAT", "")
	if err != nil {
		return 0, 0, err
	}
	return c.parseStat(text)
}

// parseStat reads STAT's reply text and remembers the count, which bounds
// the listings that follow.
func (c *Client) parseStat(text string) (count int, size int64, err error) {
	const label = "STAT"
	f := strings.Fields(text)
	if len(f) < 2 {
		return 0, 0, &ProtocolError{Command: label, Msg: "malformed reply " + quoteReply([]byte(text))}
	}
	n, ok1 := parseNumber(f[0])
	sz, ok2 := parseNumber(f[1])
	if !ok1 || !ok2 || n > int64(maxInt) {
		return 0, 0, &ProtocolError{Command: label, Msg: "malformed reply " + quoteReply([]byte(text))}
	}
	// The maildrop is fixed for the session (RFC 1939), so a listing
	// longer than this count is garbage: listings are cut off there.
	c.statCount = int(n)
	return int(n), sz, nil
}

// listLines is the most lines a LIST or UIDL reply may have: the message
// count from STAT when the session has asked for it, else a generous bound.
func (c *Client) listLines() int {
	if c.statCount >= 0 {
		return min(c.statCount, maxListLines)
	}
	return maxListLines
}

// MessageInfo is one line of a LIST reply.
type MessageInfo struct {
	Number int
	Size   int64 // octets, as the server counts them (CRLF line endings)
}

// UIDInfo is one line of a UIDL reply.
type UIDInfo struct {
	Number int
	UID    string
}

// List returns the number and size of every message not marked deleted.
func (c *Client) List() ([]MessageInfo, error) {
	return listAll(c, "LIST", parseScanListing)
}

// ListOne returns the size of message n.
func (c *Client) ListOne(n int) (MessageInfo, error) {
	return listOne(c, "LIST", n, parseScanListing, func(i MessageInfo) int { return i.Number })
}

// Uidl returns the unique id of every message not marked deleted.
func (c *Client) Uidl() ([]UIDInfo, error) {
	var out []UIDInfo
	err := c.ScanUidl(func(u UIDInfo) error {
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UidlOne returns the unique id of message n.
func (c *Client) UidlOne(n int) (UIDInfo, error) {
	u, err := listOne(c, "UIDL", n, parseUIDListing, func(i UIDInfo) int { return i.Number })
	if err != nil {
		return u, err
	}
	if err := checkUID("UIDL "+strconv.Itoa(n), u); err != nil {
		return UIDInfo{}, err
	}
	return u, nil
}

// ErrStopListing, matched by the error of a ScanList or ScanUidl callback,
// drops the session instead of reading the rest of the listing.
var ErrStopListing = errors.New("pop3: listing stopped")

// MaxUIDLength is the longest unique-id RFC 1939 §7 allows.
const MaxUIDLength = 70

// UIDError is a unique-id longer than RFC 1939 allows. pop2imap keeps every
// unique-id of the maildrop in memory and in its journal, so a server that
// sends longer ones could make it hold far more than a listing should take.
type UIDError struct {
	Command string
	Number  int // the message
	Length  int // the unique-id's length in bytes
}

func (e *UIDError) Error() string {
	return fmt.Sprintf("pop3: %s: message %d has a unique-id of %d bytes; RFC 1939 allows 1 to %d", e.Command, e.Number, e.Length, MaxUIDLength)
}

func checkUID(label string, u UIDInfo) error {
	if len(u.UID) > MaxUIDLength {
		return &UIDError{Command: label, Number: u.Number, Length: len(u.UID)}
	}
	return nil
}

// ScanList is List for a mailbox too large to hold as a slice: it calls fn
// with each message's size as its line arrives. After fn returns an error
// it is not called again; the rest of the listing is read, so the session
// stays usable, and that error is returned. When fn's error matches
// ErrStopListing (errors.Is), the rest is not read and the session is
// dropped instead: for a listing that may never end.
func (c *Client) ScanList(fn func(MessageInfo) error) error {
	return scanAll(c, "LIST", parseScanListing, fn)
}

// ScanUidl is Uidl for a mailbox too large to hold as a slice, in the way
// of ScanList.
// A unique-id longer than MaxUIDLength is a *UIDError, and the session is
// dropped: such a server may send them without end.
func (c *Client) ScanUidl(fn func(UIDInfo) error) error {
	return scanAll(c, "UIDL", parseUIDListing, checkedUIDs(fn))
}

// checkedUIDs refuses a unique-id longer than MaxUIDLength before fn sees
// it.
func checkedUIDs(fn func(UIDInfo) error) func(UIDInfo) error {
	return func(u UIDInfo) error {
		if err := checkUID("UIDL", u); err != nil {
			return err
		}
		return fn(u)
	}
}

// listAll runs the multi-line form of LIST or UIDL, parsing each line with
// parse.
func listAll[T any](c *Client, verb string, parse func([]byte) (T, bool)) ([]T, error) {
	var out []T
	err := scanAll(c, verb, parse, func(info T) error {
		out = append(out, info)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanAll runs the multi-line form of LIST or UIDL, parsing each line with
// parse and handing it to fn.
func scanAll[T any](c *Client, verb string, parse func([]byte) (T, bool), fn func(T) error) error {
	if _, err := c.cmd(verb, verb, ""); err != nil {
		return err
	}
	return scanReply(c, verb, parse, fn)
}

// scanReply reads the lines of a LIST or UIDL reply whose +OK has been
// read, parsing each with parse and handing it to fn.
func scanReply[T any](c *Client, verb string, parse func([]byte) (T, bool), fn func(T) error) error {
	return c.readMulti(verb, c.listLines(), func(line []byte) error {
		info, ok := parse(line)
		if !ok {
			return &ProtocolError{Command: verb, Msg: "malformed listing " + quoteReply(line)}
		}
		return fn(info)
	})
}

// listOne runs the one-message form of LIST or UIDL, and checks that the
// reply is about message n.
func listOne[T any](c *Client, verb string, n int, parse func([]byte) (T, bool), number func(T) int) (T, error) {
	var zero T
	label := verb + " " + strconv.Itoa(n)
	if n <= 0 {
		return zero, badNumber(label)
	}
	text, err := c.cmd(label, label, "")
	if err != nil {
		return zero, err
	}
	info, ok := parse([]byte(text))
	if !ok || number(info) != n {
		return zero, &ProtocolError{Command: label, Msg: "malformed reply " + quoteReply([]byte(text))}
	}
	return info, nil
}

// Retr retrieves message n. The reader streams the message exactly as the
// server holds it; only the dot-stuffing of the transport is undone:
//
//   - A line starts at the beginning of the body and after every LF, whether
//     that LF follows a CR or not.
//   - The body ends at a line that is exactly ".\r\n". That line is not part
//     of the message; the line ending before it is (RFC 1939: the CRLF
//     belongs to the last line). So "a\r\n.\r\n" is the 3-byte message
//     "a\r\n", "a\n.\r\n" is "a\n", and ".\r\n" alone is the empty message.
//   - Any other line that starts with "." loses exactly that one dot.
//     ".\n" and ".\r" followed by anything but LF are such lines, not ends.
//   - Every other byte passes through untouched: CRLF, bare LF, bare CR,
//     NUL and 8-bit bytes.
//
// A message that did not end with a line break cannot be told apart on the
// wire from one that did, because the server must add CRLF before the
// terminating line; the reader returns what the wire says, with that CRLF.
//
// Lines may be of any length: the reader never holds more than its fixed
// buffer. If the connection ends before the terminating line, Read returns
// an error wrapping io.ErrUnexpectedEOF, never a silently short message.
//
// The reader is valid until the next command. If the caller stops reading
// early, the next command first reads the rest of the body and throws it
// away; reading the old reader after that is an error.
func (c *Client) Retr(n int) (io.Reader, error) {
	label := "RETR " + strconv.Itoa(n)
	if n <= 0 {
		return nil, badNumber(label)
	}
	if _, err := c.cmd(label, label, ""); err != nil {
		return nil, err
	}
	return c.openBody(label), nil
}

// Top retrieves the header of message n and the first lines lines of its
// body, as a reader with the same rules as Retr.
func (c *Client) Top(n, lines int) (io.Reader, error) {
	label := "TOP " + strconv.Itoa(n) + " " + strconv.Itoa(lines)
	if n <= 0 || lines < 0 {
		return nil, badNumber(label)
	}
	if _, err := c.cmd(label, label, ""); err != nil {
		return nil, err
	}
	return c.openBody(label), nil
}

// Dele marks message n deleted. The server removes it only when the session
// ends with a successful Quit; Rset or a dropped connection keep it.
func (c *Client) Dele(n int) error {
	label := "DELE " + strconv.Itoa(n)
	if n <= 0 {
		return badNumber(label)
	}
	_, err := c.cmd(label, label, "")
	return err
}

// Rset unmarks every message marked deleted in this session.
func (c *Client) Rset() error {
	_, err := c.cmd("RSET", "RSET", "")
	return err
}

// Noop does nothing but ask the server for a +OK.
func (c *Client) Noop() error {
	_, err := c.cmd("NOOP", "NOOP", "")
	return err
}

// Quit ends the session: the server removes the messages marked deleted and
// replies; then the connection is closed. Only a nil error says the
// deletions were committed. After a -ERR some may not have been; after a
// network error whether they were is unknown.
func (c *Client) Quit() error {
	_, err := c.cmd("QUIT", "QUIT", "")
	// The session is over whatever the reply; a failure to close after the
	// server's +OK changes nothing that was committed.
	c.Close()
	return err
}

// Close drops the connection without QUIT, so the server deletes nothing.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	return c.conn.Close()
}

// checkArg refuses an argument that could end the command line early.
// The argument itself is not quoted in the error: it may be a password.
func checkArg(label, arg string) error {
	if strings.ContainsAny(arg, "\r\n\x00") {
		return fmt.Errorf("pop3: %s: %w", label, ErrBadArgument)
	}
	return nil
}

func badNumber(label string) error {
	return fmt.Errorf("pop3: %s: %w", label, ErrBadArgument)
}

// begin checks that a command may be sent now and finishes the body left
// over from the previous command.
func (c *Client) begin(label string) error {
	if c.inCallback {
		return fmt.Errorf("pop3: %s: %w", label, errInCallback)
	}
	if c.closed {
		return fmt.Errorf("pop3: %s: %w", label, net.ErrClosed)
	}
	if c.err == nil && c.body != nil {
		c.finishBody()
	}
	if c.err != nil {
		return fmt.Errorf("pop3: %s: connection unusable after an earlier error: %w", label, c.err)
	}
	return nil
}

// cmd sends one command line and reads its status line, returning the text
// after "+OK". label names the command in errors; trace, if not empty, is
// what the Debug trace shows instead of line.
func (c *Client) cmd(label, line, trace string) (string, error) {
	if err := c.begin(label); err != nil {
		return "", err
	}
	c.setDeadline()
	c.send(line, trace)
	if err := c.flush(label); err != nil {
		return "", err
	}
	return c.readStatus(label)
}

// fail records err as the reason the connection can no longer be used.
func (c *Client) fail(err error) error {
	if c.err == nil {
		c.err = err
	}
	return err
}

func (c *Client) setDeadline() {
	if c.timeout > 0 {
		c.conn.SetDeadline(time.Now().Add(c.timeout))
	}
}

// extendRead pushes the read deadline forward while a long reply is still
// arriving, so only a silence of Timeout fails it.
func (c *Client) extendRead() {
	if c.timeout > 0 {
		c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
}

// send buffers one command line; the caller flushes.
func (c *Client) send(line, trace string) {
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	if c.debug != nil {
		if trace == "" {
			trace = line
		}
		fmt.Fprintf(c.debug, "C: %s\n", trace)
	}
}

func (c *Client) flush(label string) error {
	if err := c.w.Flush(); err != nil {
		return c.fail(fmt.Errorf("pop3: %s: %w", label, err))
	}
	return nil
}

func (c *Client) traceLine(line []byte) {
	if c.debug != nil {
		fmt.Fprintf(c.debug, "S: %s\n", c.scrub(string(line)))
	}
}

// scrub replaces the secret of the login under way in s.
func (c *Client) scrub(s string) string {
	return Redact(s, c.hide)
}

// hiding runs a login command with secret kept out of its error and of the
// trace, whatever the server echoes back.
func (c *Client) hiding(secret string, f func() error) error {
	c.hide = secret
	defer func() { c.hide = "" }()
	err := f()
	if err == nil || secret == "" {
		return err
	}
	var perr *Error
	var prot *ProtocolError
	switch {
	case errors.As(err, &perr) && containsSecret(perr.Text, secret):
		scrubbed := *perr
		scrubbed.Text = c.scrub(perr.Text)
		return &scrubbed
	case errors.As(err, &prot) && containsSecret(prot.Msg, secret):
		scrubbed := *prot
		scrubbed.Msg = c.scrub(prot.Msg)
		return &scrubbed
	case containsSecret(err.Error(), secret):
		return errors.New(c.scrub(err.Error()))
	}
	return err
}

// readLine reads one response line and returns it without its line ending
// (CRLF, or a bare LF from a sloppy server). The slice is only valid until
// the next read. A line longer than the bound is refused after reading at
// most one buffer past the bound.
func (c *Client) readLine(label string) ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		buf := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull && len(buf) <= c.maxLine+2 {
			line, err = c.r.ReadSlice('\n')
			buf = append(buf, line...)
		}
		line = buf
		if err == bufio.ErrBufferFull {
			return nil, c.fail(c.tooLong(label))
		}
	}
	if err != nil {
		if err == io.EOF {
			return nil, c.fail(fmt.Errorf("pop3: %s: connection closed by server: %w", label, io.ErrUnexpectedEOF))
		}
		return nil, c.fail(fmt.Errorf("pop3: %s: %w", label, err))
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if len(line) > c.maxLine {
		return nil, c.fail(c.tooLong(label))
	}
	return line, nil
}

func (c *Client) tooLong(label string) error {
	return &ProtocolError{Command: label, Msg: fmt.Sprintf("response line longer than %d bytes", c.maxLine)}
}

// readStatus reads a "+OK" or "-ERR" line. It returns the text after +OK,
// or an *Error for -ERR.
func (c *Client) readStatus(label string) (string, error) {
	line, err := c.readLine(label)
	if err != nil {
		return "", err
	}
	c.traceLine(line)
	ok, text, valid := parseStatus(line)
	if !valid {
		return "", c.fail(&ProtocolError{Command: label, Msg: "malformed status line " + quoteReply(line)})
	}
	if !ok {
		return "", parseError(label, text)
	}
	return text, nil
}

// parseStatus splits a status line into its indicator and text.
// Indicators are matched without regard to case.
func parseStatus(line []byte) (ok bool, text string, valid bool) {
	var rest []byte
	switch {
	case hasPrefixFold(line, "+OK"):
		ok, rest = true, line[3:]
	case hasPrefixFold(line, "-ERR"):
		rest = line[4:]
	default:
		return false, "", false
	}
	if len(rest) > 0 && rest[0] != ' ' && rest[0] != '\t' {
		return false, "", false
	}
	return ok, strings.TrimLeft(string(rest), " \t"), true
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

// parseError builds the *Error for a -ERR reply, taking the RFC 2449
// response code off the front of the text if there is one.
func parseError(label, text string) *Error {
	e := &Error{Command: label, Text: text}
	if len(text) < 3 || text[0] != '[' {
		return e
	}
	end := strings.IndexByte(text, ']')
	if end < 2 {
		return e
	}
	code := text[1:end]
	for i := 0; i < len(code); i++ {
		if code[i] <= ' ' || code[i] >= 0x7f || code[i] == '[' {
			return e
		}
	}
	e.Code = strings.ToUpper(code)
	e.Text = strings.TrimLeft(text[end+1:], " \t")
	return e
}

// multiCmd sends a command whose +OK is followed by lines ending with ".".
// fn sees each line, unstuffed, without its line ending; the slice is only
// valid during the call. If fn fails, the rest of the reply is still read so
// the next command starts in step, and fn's first error is returned.
func (c *Client) multiCmd(label, line string, maxLines int, fn func(line []byte) error) error {
	if _, err := c.cmd(label, line, ""); err != nil {
		return err
	}
	return c.readMulti(label, maxLines, fn)
}

// readMulti reads the lines of a multi-line reply whose +OK has been read,
// as multiCmd describes.
func (c *Client) readMulti(label string, maxLines int, fn func(line []byte) error) error {
	var (
		firstErr error
		lines    int
		total    int64
	)
	for {
		if c.r.Buffered() == 0 {
			c.extendRead()
		}
		l, err := c.readLine(label)
		if err != nil {
			return err
		}
		c.traceLine(l)
		if len(l) > 0 && l[0] == '.' {
			if len(l) == 1 {
				return firstErr
			}
			l = l[1:]
		}
		lines++
		total += int64(len(l)) + 2 // and its line ending: the bound is on what the wire carries
		if lines > maxLines || total > maxListBytes {
			return c.fail(&ProtocolError{Command: label, Msg: fmt.Sprintf("reply longer than %d lines or %d bytes", maxLines, maxListBytes)})
		}
		if firstErr == nil {
			firstErr = fn(l)
			var uerr *UIDError
			if errors.As(firstErr, &uerr) || errors.Is(firstErr, ErrStopListing) {
				// A unique-id of any length, or more than the caller can
				// hold: the listing may never end, so drop the session
				// rather than drain it.
				return c.fail(firstErr)
			}
		}
	}
}

const maxInt = int(^uint(0) >> 1)

// parseNumber accepts only decimal digits: no sign, no spaces.
func parseNumber(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// parseScanListing parses "n size"; RFC 1939 allows more after the size.
func parseScanListing(line []byte) (MessageInfo, bool) {
	f := strings.Fields(string(line))
	if len(f) < 2 {
		return MessageInfo{}, false
	}
	n, ok1 := parseNumber(f[0])
	size, ok2 := parseNumber(f[1])
	if !ok1 || !ok2 || n == 0 || n > int64(maxInt) {
		return MessageInfo{}, false
	}
	return MessageInfo{Number: int(n), Size: size}, true
}

// parseUIDListing parses "n uid". The UID is everything after the number
// and its separating spaces, so that a server that puts spaces in its UIDs
// cannot make two different UIDs look equal.
func parseUIDListing(line []byte) (UIDInfo, bool) {
	s := strings.TrimRight(string(line), " \t")
	sp := strings.IndexAny(s, " \t")
	if sp < 0 {
		return UIDInfo{}, false
	}
	n, ok := parseNumber(s[:sp])
	uid := strings.TrimLeft(s[sp:], " \t")
	if !ok || n == 0 || n > int64(maxInt) || uid == "" {
		return UIDInfo{}, false
	}
	return UIDInfo{Number: int(n), UID: uid}, true
}

// joinErrors is errors.Join on one line: both stay in the chain for
// errors.Is and errors.As, and a caller can print the result as the one
// line of an error message.
func joinErrors(first, then error) error {
	return fmt.Errorf("%w; then %w", first, then)
}
