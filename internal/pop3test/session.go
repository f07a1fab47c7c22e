package pop3test

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// errLineTooLong reports a command line longer than MaxLineLength.
var errLineTooLong = errors.New("pop3test: line too long")

// tlsHandshakeTimeout bounds the STLS handshake so that a client that never
// starts it does not pin a session until Close.
const tlsHandshakeTimeout = 10 * time.Second

// session is one client connection. It runs on its own goroutine; only the
// Server's methods it calls touch shared state.
type session struct {
	srv       *Server
	raw       net.Conn // the accepted connection, closed when the session ends
	conn      net.Conn // raw, or the TLS connection on top of it after STLS
	r         *bufio.Reader
	w         *bufio.Writer
	timestamp string // APOP timestamp with angle brackets, "" without APOP
	inTLS     bool

	// Authorization state.
	user string // the USER argument awaiting PASS, "" when none

	// Transaction state.
	authed   bool
	snapshot []*message // the maildrop at login, numbered from 1
	deleted  []bool     // DELE marks, parallel to snapshot
}

// result is the outcome of executing one command.
type result struct {
	reply    []byte
	quit     bool // close the connection once the reply is written
	startTLS bool // upgrade the connection once the reply is written
	drop     bool // close the connection without writing the reply
}

func newSession(srv *Server, conn net.Conn) *session {
	ss := &session{
		srv:  srv,
		raw:  conn,
		conn: conn,
		r:    bufio.NewReaderSize(conn, 4096),
		w:    bufio.NewWriter(conn),
	}
	if srv.cfg.APOPSecret != "" {
		ss.timestamp = newTimestamp()
	}
	return ss
}

func (ss *session) run() {
	defer ss.end()
	greeting := "+OK pop3test ready"
	if ss.timestamp != "" {
		greeting += " " + ss.timestamp
	}
	ss.w.WriteString(greeting + "\r\n")
	for {
		// Replies to pipelined commands go out together; the buffer is
		// flushed once every command that has arrived is answered.
		if ss.r.Buffered() == 0 {
			if err := ss.w.Flush(); err != nil {
				return
			}
		}
		line, err := ss.readLine()
		if errors.Is(err, errLineTooLong) {
			ss.w.WriteString("-ERR line too long\r\n")
			ss.w.Flush()
			return
		}
		if err != nil {
			return
		}
		if !ss.handle(line) {
			return
		}
	}
}

// end releases the maildrop before closing the connection, so that a client
// which has seen the connection close can log in again at once.
func (ss *session) end() {
	ss.srv.unlockMaildrop(ss)
	ss.raw.Close()
	ss.srv.untrack(ss.raw)
}

// readLine reads one line and strips its CRLF (or bare LF).
func (ss *session) readLine() (string, error) {
	b, err := ss.r.ReadSlice('\n')
	if len(b) > MaxLineLength || errors.Is(err, bufio.ErrBufferFull) {
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	b = bytes.TrimSuffix(b[:len(b)-1], []byte("\r"))
	return string(b), nil
}

// handle runs one command line through the faults and the protocol. It
// reports false when the session must end.
func (ss *session) handle(line string) bool {
	verb, args := splitCommand(line)
	ss.srv.appendLog(logEntry(verb, args))

	eff := ss.srv.fire(verb, args)
	for _, hook := range eff.hooks {
		hook()
	}
	if eff.stall > 0 {
		timer := time.NewTimer(eff.stall)
		select {
		case <-timer.C:
		case <-ss.srv.done:
			timer.Stop()
			return false
		}
	}
	if eff.drop {
		return false
	}

	var res result
	if eff.refuse {
		res.reply = errReply(eff.errCode, eff.errText)
	} else {
		res = ss.execute(verb, args)
	}
	if res.drop {
		return false
	}
	if eff.cutAfter > 0 {
		// Earlier pipelined replies go out whole; only this one is cut.
		if ss.w.Flush() != nil {
			return false
		}
		ss.conn.Write(res.reply[:min(eff.cutAfter, len(res.reply))])
		return false
	}
	ss.w.Write(res.reply)
	if res.quit {
		ss.w.Flush()
		return false
	}
	if res.startTLS {
		return ss.startTLS()
	}
	return true
}

// startTLS upgrades the connection after "+OK" to STLS and resets the
// session to a fresh AUTHORIZATION state.
func (ss *session) startTLS() bool {
	if ss.w.Flush() != nil {
		return false
	}
	// RFC 2595 forbids pipelining past STLS; anything already buffered
	// was sent in plaintext and must not be taken as coming over TLS.
	if ss.r.Buffered() > 0 {
		return false
	}
	tlsConn := tls.Server(ss.raw, ss.srv.cfg.TLSConfig)
	ss.raw.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if tlsConn.Handshake() != nil {
		return false
	}
	ss.raw.SetDeadline(time.Time{})
	ss.conn = tlsConn
	ss.r.Reset(tlsConn)
	ss.w.Reset(tlsConn)
	ss.inTLS = true
	ss.user = ""
	return true
}

// splitCommand splits a command line into its upper-cased verb and its
// arguments. PASS keeps its argument verbatim, since a password may contain
// spaces; other commands have runs of spaces collapsed to one.
func splitCommand(line string) (verb, args string) {
	verb, rest, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	if verb == "PASS" {
		return verb, rest
	}
	return verb, strings.Join(strings.Fields(rest), " ")
}

// logEntry is the Log entry for a command, with its secrets redacted.
func logEntry(verb, args string) string {
	switch verb {
	case "PASS":
		if args != "" {
			args = "<redacted>"
		}
	case "APOP", "AUTH":
		// APOP name digest; AUTH mechanism initial-response.
		if first, _, found := strings.Cut(args, " "); found {
			args = first + " <redacted>"
		}
	}
	if args == "" {
		return verb
	}
	return verb + " " + args
}

func okReply(text string) []byte {
	if text == "" {
		return []byte("+OK\r\n")
	}
	return []byte("+OK " + text + "\r\n")
}

func errReply(code, text string) []byte {
	if code != "" {
		text = "[" + code + "] " + text
	}
	return []byte("-ERR " + text + "\r\n")
}

func okResult(text string) result        { return result{reply: okReply(text)} }
func errResult(code, text string) result { return result{reply: errReply(code, text)} }

var errBadCredentials = errResult("AUTH", "invalid credentials")

// execute carries out one command in the session's current state.
func (ss *session) execute(verb, args string) result {
	switch verb {
	case "CAPA":
		return ss.capa()
	case "QUIT":
		return ss.quit()
	}
	if !ss.authed {
		switch verb {
		case "USER":
			return ss.userCmd(args)
		case "PASS":
			return ss.pass(args)
		case "APOP":
			return ss.apop(args)
		case "AUTH":
			return ss.auth(args)
		case "STLS":
			return ss.stls()
		case "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP":
			return errResult("", "command not valid before login")
		}
		return errResult("", "unknown command")
	}
	switch verb {
	case "STAT":
		return ss.stat(args)
	case "LIST":
		return ss.list(args)
	case "UIDL":
		if ss.srv.cfg.NoUIDL {
			return errResult("", "unknown command")
		}
		return ss.uidl(args)
	case "RETR":
		return ss.retr(args)
	case "TOP":
		if ss.srv.cfg.NoTop {
			return errResult("", "unknown command")
		}
		return ss.top(args)
	case "DELE":
		return ss.dele(args)
	case "RSET":
		return ss.rset(args)
	case "NOOP":
		return okResult("")
	case "USER", "PASS", "APOP", "AUTH", "STLS":
		return errResult("", "command not valid after login")
	}
	return errResult("", "unknown command")
}

func (ss *session) capa() result {
	var b strings.Builder
	b.WriteString("+OK capability list follows\r\n")
	b.WriteString("USER\r\n")
	if !ss.srv.cfg.NoTop {
		b.WriteString("TOP\r\n")
	}
	if !ss.srv.cfg.NoUIDL {
		b.WriteString("UIDL\r\n")
	}
	if !ss.srv.cfg.NoPipelining {
		b.WriteString("PIPELINING\r\n")
	}
	b.WriteString("RESP-CODES\r\n")
	b.WriteString("AUTH-RESP-CODE\r\n")
	b.WriteString("SASL PLAIN\r\n")
	if ss.srv.cfg.TLSConfig != nil && !ss.inTLS && !ss.authed {
		b.WriteString("STLS\r\n")
	}
	if ss.srv.cfg.LoginDelay != "" && ss.authed {
		b.WriteString("LOGIN-DELAY " + ss.srv.cfg.LoginDelay + "\r\n")
	}
	b.WriteString("IMPLEMENTATION pop3test\r\n")
	b.WriteString(".\r\n")
	return result{reply: []byte(b.String())}
}

// quit ends the session. In the TRANSACTION state it first enters the
// UPDATE state: the messages marked by DELE leave the maildrop, and the
// maildrop is released before the reply so that the client can log in again
// as soon as it has read "+OK".
func (ss *session) quit() result {
	if !ss.authed {
		return result{reply: okReply("pop3test signing off"), quit: true}
	}
	var gone []*message
	for i, m := range ss.snapshot {
		if ss.deleted[i] {
			gone = append(gone, m)
		}
	}
	ss.srv.commit(gone)
	ss.srv.unlockMaildrop(ss)
	left := len(ss.snapshot) - len(gone)
	return result{reply: okReply(fmt.Sprintf("pop3test signing off (%d messages left)", left)), quit: true}
}

func (ss *session) userCmd(args string) result {
	if args == "" {
		return errResult("", "USER needs a name")
	}
	// Any name is accepted here so that PASS alone reveals whether the
	// account exists, as RFC 1939 suggests.
	ss.user = args
	return okResult("send PASS")
}

func (ss *session) pass(args string) result {
	user := ss.user
	ss.user = ""
	if user == "" {
		return errResult("", "send USER first")
	}
	if user != ss.srv.cfg.Username || args != ss.srv.cfg.Password {
		return errBadCredentials
	}
	return ss.login()
}

func (ss *session) apop(args string) result {
	ss.user = ""
	if ss.timestamp == "" {
		return errResult("", "APOP not available")
	}
	name, digest, found := strings.Cut(args, " ")
	if !found {
		return errResult("", "APOP needs a name and a digest")
	}
	sum := md5.Sum([]byte(ss.timestamp + ss.srv.cfg.APOPSecret))
	if name != ss.srv.cfg.Username || strings.ToLower(digest) != hex.EncodeToString(sum[:]) {
		return errBadCredentials
	}
	return ss.login()
}

// auth implements AUTH PLAIN (RFC 5034 and RFC 4616), with the initial
// response on the command line or after an empty "+ " challenge. A bare
// AUTH lists the mechanisms, as many servers do.
func (ss *session) auth(args string) result {
	ss.user = ""
	if args == "" {
		return result{reply: []byte("+OK\r\nPLAIN\r\n.\r\n")}
	}
	mech, ir, hasIR := strings.Cut(args, " ")
	if !strings.EqualFold(mech, "PLAIN") {
		return errResult("", "unsupported mechanism")
	}
	if !hasIR {
		ss.w.WriteString("+ \r\n")
		if ss.w.Flush() != nil {
			return result{drop: true}
		}
		line, err := ss.readLine()
		if errors.Is(err, errLineTooLong) {
			return result{reply: []byte("-ERR line too long\r\n"), quit: true}
		}
		if err != nil {
			return result{drop: true}
		}
		ss.srv.appendLog("<redacted>")
		if line == "*" {
			return errResult("", "AUTH cancelled")
		}
		ir = line
	}
	var payload []byte
	if ir != "=" {
		var err error
		if payload, err = base64.StdEncoding.DecodeString(ir); err != nil {
			return errResult("", "malformed SASL response")
		}
	}
	parts := strings.Split(string(payload), "\x00")
	if len(parts) != 3 {
		return errResult("", "malformed SASL response")
	}
	authzid, authcid, password := parts[0], parts[1], parts[2]
	if authcid != ss.srv.cfg.Username || password != ss.srv.cfg.Password ||
		(authzid != "" && authzid != authcid) {
		return errBadCredentials
	}
	return ss.login()
}

func (ss *session) stls() result {
	if ss.srv.cfg.TLSConfig == nil {
		return errResult("", "unknown command")
	}
	if ss.inTLS {
		return errResult("", "TLS already active")
	}
	return result{reply: okReply("begin TLS negotiation"), startTLS: true}
}

// login enters the TRANSACTION state once the credentials are good.
func (ss *session) login() result {
	snapshot, ok := ss.srv.lockMaildrop(ss)
	if !ok {
		return errResult("IN-USE", "maildrop locked")
	}
	ss.authed = true
	ss.snapshot = snapshot
	ss.deleted = make([]bool, len(snapshot))
	count, size := ss.totals()
	return okResult(fmt.Sprintf("maildrop has %d messages (%d octets)", count, size))
}

// totals counts the messages not marked deleted and their octets.
func (ss *session) totals() (count int, size int) {
	for i, m := range ss.snapshot {
		if !ss.deleted[i] {
			count++
			size += m.size()
		}
	}
	return count, size
}

// message parses a message number and returns its index in the snapshot,
// or the error reply when there is no such message or it is marked
// deleted.
func (ss *session) message(arg string) (int, *result) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 || strings.TrimLeft(arg, "0123456789") != "" {
		r := errResult("", "invalid message number")
		return 0, &r
	}
	if n > len(ss.snapshot) {
		r := errResult("", "no such message")
		return 0, &r
	}
	if ss.deleted[n-1] {
		r := errResult("", fmt.Sprintf("message %d already deleted", n))
		return 0, &r
	}
	return n - 1, nil
}

func (ss *session) stat(args string) result {
	if args != "" {
		return errResult("", "STAT takes no argument")
	}
	count, size := ss.totals()
	return okResult(fmt.Sprintf("%d %d", count, size))
}

func (ss *session) list(args string) result {
	if args != "" {
		i, bad := ss.message(args)
		if bad != nil {
			return *bad
		}
		return okResult(fmt.Sprintf("%d %d", i+1, ss.snapshot[i].size()))
	}
	count, size := ss.totals()
	var b strings.Builder
	fmt.Fprintf(&b, "+OK %d messages (%d octets)\r\n", count, size)
	for i, m := range ss.snapshot {
		if !ss.deleted[i] {
			fmt.Fprintf(&b, "%d %d\r\n", i+1, m.size())
		}
	}
	b.WriteString(".\r\n")
	return result{reply: []byte(b.String())}
}

func (ss *session) uidl(args string) result {
	if args != "" {
		i, bad := ss.message(args)
		if bad != nil {
			return *bad
		}
		return okResult(fmt.Sprintf("%d %s", i+1, ss.snapshot[i].uidl))
	}
	var b strings.Builder
	b.WriteString("+OK unique-id listing follows\r\n")
	for i, m := range ss.snapshot {
		if !ss.deleted[i] {
			fmt.Fprintf(&b, "%d %s\r\n", i+1, m.uidl)
		}
	}
	b.WriteString(".\r\n")
	return result{reply: []byte(b.String())}
}

func (ss *session) retr(args string) result {
	i, bad := ss.message(args)
	if bad != nil {
		return *bad
	}
	data := ss.snapshot[i].data
	reply := okReply(fmt.Sprintf("%d octets", len(data)))
	return result{reply: appendWireBody(reply, data)}
}

func (ss *session) top(args string) result {
	num, lines, found := strings.Cut(args, " ")
	if !found {
		return errResult("", "TOP needs a message number and a line count")
	}
	i, bad := ss.message(num)
	if bad != nil {
		return *bad
	}
	n, err := strconv.Atoi(lines)
	if err != nil || n < 0 || strings.TrimLeft(lines, "0123456789") != "" {
		return errResult("", "invalid line count")
	}
	return result{reply: appendWireBody(okReply("top of message follows"), topOf(ss.snapshot[i].data, n))}
}

func (ss *session) dele(args string) result {
	i, bad := ss.message(args)
	if bad != nil {
		return *bad
	}
	ss.deleted[i] = true
	return okResult(fmt.Sprintf("message %d deleted", i+1))
}

func (ss *session) rset(args string) result {
	if args != "" {
		return errResult("", "RSET takes no argument")
	}
	clear(ss.deleted)
	count, size := ss.totals()
	return okResult(fmt.Sprintf("maildrop has %d messages (%d octets)", count, size))
}
