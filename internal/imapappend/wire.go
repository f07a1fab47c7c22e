package imapappend

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/emersion/go-imap/v2"
)

// wire is the connection and its buffers, shared by Setup and Client.
type wire struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

func (w *wire) setConn(conn net.Conn) {
	w.conn = conn
	w.br = bufio.NewReaderSize(conn, 16<<10)
	w.bw = newWriter(conn)
}

func newWriter(conn net.Conn) *bufio.Writer { return bufio.NewWriterSize(conn, 64<<10) }

// maxResponseLine bounds one line from the server. APPEND replies are
// short; a line longer than this is a server gone wrong.
const maxResponseLine = 64 << 10

// readLine reads one reply line without its line ending. A literal at the
// end of a line is skipped, and the line goes on after it.
func (w *wire) readLine() (string, error) {
	var line []byte
	for {
		b, err := w.br.ReadSlice('\n')
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
			if _, err := io.CopyN(io.Discard, w.br, n); err != nil {
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

// Response codes go-imap does not name.
const (
	codeCapability imap.ResponseCode = "CAPABILITY"
	codeAppendUID  imap.ResponseCode = "APPENDUID"
)

// imapDateTime is the layout of an IMAP date-time (RFC 3501 section 9).
const imapDateTime = "_2-Jan-2006 15:04:05 -0700"

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

// quoteMailbox encodes a mailbox name in modified UTF-7 (RFC 3501 section
// 5.1.3), as go-imap does, and quotes it.
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
