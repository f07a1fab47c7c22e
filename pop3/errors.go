package pop3

import (
	"errors"
	"strconv"
	"strings"
)

// ErrBadArgument is wrapped by the error a command returns when one of its
// arguments contains CR, LF or NUL (which would let the argument smuggle a
// second command onto the wire), or when a message number is not positive.
// Nothing is sent in that case.
var ErrBadArgument = errors.New("argument contains CR, LF or NUL, or is out of range")

// Error is a refusal from the server: a "-ERR" reply.
//
// Code is the RFC 2449 / RFC 3206 response code that may open the text, in
// upper case and without brackets ("IN-USE", "LOGIN-DELAY", "SYS/TEMP",
// "SYS/PERM", "AUTH", "UTF8", ...), or "" when the server sent none.
// Command names the command that was refused ("RETR 17", "PASS", "greeting");
// it never carries a password, digest or SASL payload.
type Error struct {
	Command string
	Code    string
	Text    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pop3: ")
	if e.Command != "" {
		b.WriteString(e.Command)
		b.WriteString(": ")
	}
	if e.Code != "" {
		b.WriteString("[")
		b.WriteString(printable(e.Code))
		b.WriteString("]")
		if e.Text != "" {
			b.WriteString(" ")
		}
	}
	switch {
	case e.Text != "":
		b.WriteString(printable(e.Text))
	case e.Code == "":
		b.WriteString("-ERR")
	}
	return b.String()
}

// Temporary reports whether the refusal is expected to go away if the same
// thing is tried again later: the maildrop is locked by another session
// (IN-USE), logins come too often (LOGIN-DELAY), or the server has a
// transient problem (SYS/TEMP).
func (e *Error) Temporary() bool {
	return codeIs(e.Code, "IN-USE") || codeIs(e.Code, "LOGIN-DELAY") || codeIs(e.Code, "SYS/TEMP")
}

// codeIs reports whether code is want or a more specific code below it in
// the RFC 2449 hierarchy ("SYS/TEMP/DISK" is a "SYS/TEMP").
func codeIs(code, want string) bool {
	if len(code) < len(want) || !strings.EqualFold(code[:len(want)], want) {
		return false
	}
	return len(code) == len(want) || code[len(want)] == '/'
}

// ProtocolError reports a reply that breaks the protocol: garbage instead of
// a status line, a line longer than Options.MaxLineLength, a multi-line reply
// that does not end, a listing that does not parse. After most protocol
// errors the client can no longer tell where one reply ends and the next
// begins, so every later command fails too.
type ProtocolError struct {
	Command string
	Msg     string
}

func (e *ProtocolError) Error() string {
	if e.Command == "" {
		return "pop3: " + e.Msg
	}
	return "pop3: " + e.Command + ": " + e.Msg
}

// printable replaces ASCII control characters so that a server's text cannot
// rewrite a terminal or forge log lines when an error is printed.
func printable(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}

// quoteReply shows at most the first 64 bytes of a bad reply in an error.
func quoteReply(line []byte) string {
	const max = 64
	if len(line) > max {
		return strconv.Quote(string(line[:max])) + "..."
	}
	return strconv.Quote(string(line))
}
