package pop3

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// refDecode is the plainest possible reading of the rules on Client.Retr,
// written apart from the streaming reader to check it: split the wire into
// lines at LF; the line ".\r\n" ends the message; any other line starting
// with "." loses that dot. It returns the message, the bytes after the
// terminator, and whether there was a terminator. Without one, msg is all
// the unstuffed data, the unfinished last line included.
func refDecode(wire []byte) (msg, rest []byte, ok bool) {
	msg = []byte{}
	for len(wire) > 0 {
		line := wire
		if i := bytes.IndexByte(wire, '\n'); i >= 0 {
			line = wire[:i+1]
		}
		wire = wire[len(line):]
		if string(line) == ".\r\n" {
			return msg, wire, true
		}
		if line[0] == '.' {
			line = line[1:]
		}
		msg = append(msg, line...)
	}
	return msg, nil, false
}

// FuzzBodyReader checks the body reader against refDecode on any input,
// with the network and the caller both reading in odd sizes: never a panic,
// the same message, the bytes after the terminator untouched, and on a cut
// stream io.ErrUnexpectedEOF with nothing but a prefix of the data.
func FuzzBodyReader(f *testing.F) {
	for _, s := range []string{
		"", ".\r\n", "a\r\n.\r\n", "..\r\n.\r\n", "a\n.\r\n", ".\n.\r\n", ".\r.\r\n",
		"a\r\n..b\r\n.\r\n+OK\r\n", "abc.\r\n", "\x00\xff\r\n.\r\n", "a\r\n.\r", "a\r\n.",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		want, wantRest, terminated := refDecode(wire)
		same := func(r io.Reader) io.Reader { return r }
		modes := []struct {
			bufSize int                       // the client's read buffer; 16 is bufio's least
			conn    func(io.Reader) io.Reader // how the network delivers
			read    func(io.Reader) io.Reader // how the caller reads; nil: io.Copy, which uses WriteTo
		}{
			{readBufferSize, same, same},
			{16, same, same},
			{16, iotest.HalfReader, func(r io.Reader) io.Reader { return &oddReader{r: r} }},
			{16, iotest.OneByteReader, nil},
			{16, same, iotest.OneByteReader},
		}
		for _, m := range modes {
			conn := &streamConn{r: m.conn(io.MultiReader(strings.NewReader("+OK\r\n+OK\r\n"), bytes.NewReader(wire)))}
			c, err := newClient(conn, nil, m.bufSize)
			if err != nil {
				t.Fatal(err)
			}
			body, err := c.Retr(1)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			if m.read != nil {
				got, err = io.ReadAll(m.read(body))
			} else {
				var buf bytes.Buffer
				_, err = io.Copy(&buf, body)
				got = buf.Bytes()
			}
			if terminated {
				if err != nil {
					t.Fatalf("error %v on a terminated body", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("body %q, want %q", got, want)
				}
				rest, _ := io.ReadAll(c.r)
				if !bytes.Equal(rest, wantRest) {
					t.Fatalf("after the body %q, want %q", rest, wantRest)
				}
				continue
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v on a cut body, want io.ErrUnexpectedEOF", err)
			}
			if !bytes.HasPrefix(want, got) {
				t.Fatalf("cut body gave %q, not a prefix of %q", got, want)
			}
		}
	})
}

// oddReader reads in sizes 1, 2, 3, ... 7, 1, ...
type oddReader struct {
	r io.Reader
	n int
}

func (o *oddReader) Read(p []byte) (int, error) {
	o.n = o.n%7 + 1
	if len(p) > o.n {
		p = p[:o.n]
	}
	return o.r.Read(p)
}

// checkErr fails on an error a client must never return: one outside the
// documented kinds, or without the "pop3: " prefix.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var perr *Error
	var proto *ProtocolError
	if !errors.As(err, &perr) && !errors.As(err, &proto) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("unexpected kind of error %T: %v", err, err)
	}
	if !strings.HasPrefix(err.Error(), "pop3: ") {
		t.Fatalf("error %q without the pop3: prefix", err)
	}
}

// Reference readings of one response line, written as regular expressions
// apart from the hand-written parsers, to check them against.
var (
	// RFC 1939 §3: a status indicator, then a space or tab and the text,
	// or nothing; we accept any case and runs of blanks.
	refStatusRe = regexp.MustCompile(`(?s)^(?i:(\+OK)|-ERR)(?:[ \t]+(.*))?$`)
	// RFC 2449 §8: "[" a response code of printable characters, "]".
	refCodeRe = regexp.MustCompile(`(?s)^\[([\x21-\x5a\x5c\x5e-\x7e]+)\][ \t]*(.*)$`)
	// RFC 1939 §7: a message number, blanks, and the unique-id up to the
	// last character that is not a blank.
	refUIDRe = regexp.MustCompile(`(?s)^([0-9]{1,18})[ \t]+(.*[^ \t])[ \t]*$`)
)

// checkStatusLine compares parseStatus, parseError and parseUIDListing
// with the references on one line.
func checkStatusLine(t *testing.T, line []byte) {
	t.Helper()
	ok, text, valid := parseStatus(line)
	m := refStatusRe.FindSubmatchIndex(line)
	refValid := m != nil
	if valid != refValid {
		t.Fatalf("parseStatus(%q): valid %v, the reference says %v", line, valid, refValid)
	}
	if valid {
		refOK := m[2] >= 0
		refText := ""
		if m[4] >= 0 {
			refText = string(line[m[4]:m[5]])
		}
		if ok != refOK || text != refText {
			t.Fatalf("parseStatus(%q) = %v, %q; the reference says %v, %q", line, ok, text, refOK, refText)
		}
	}

	e := parseError("X", string(line))
	refCode, refText := "", string(line)
	if m := refCodeRe.FindStringSubmatch(string(line)); m != nil {
		refCode, refText = strings.ToUpper(m[1]), m[2]
	}
	if e.Code != refCode || e.Text != refText {
		t.Fatalf("parseError(%q) = [%s] %q; the reference says [%s] %q", line, e.Code, e.Text, refCode, refText)
	}

	u, uok := parseUIDListing(line)
	refU, refUOK := UIDInfo{}, false
	if m := refUIDRe.FindSubmatch(line); m != nil {
		if n, err := strconv.ParseInt(string(m[1]), 10, 64); err == nil && n > 0 {
			refU, refUOK = UIDInfo{Number: int(n), UID: string(m[2])}, true
		}
	}
	if uok != refUOK || u != refU {
		t.Fatalf("parseUIDListing(%q) = %+v, %v; the reference says %+v, %v", line, u, uok, refU, refUOK)
	}
}

// FuzzResponseLine feeds any bytes to the client as a greeting and the
// replies to a series of commands: parsing never panics, errors are always
// of the documented kinds, and each line reads as the references read it.
func FuzzResponseLine(f *testing.F) {
	for _, s := range []string{
		"+OK ready <1.2@host>\r\n+OK 2 320\r\n+OK 1 120\r\n+OK 1 uid\r\n",
		"-ERR [IN-USE] busy\r\n",
		"+OK\r\n-ERR [SYS/TEMP] later\r\n-ERR [\r\n-ERR []\r\n-ERR [a]\r\n",
		"+OK\n+OK 99999999999999999999 1\n",
		"+OK <>\r\n+OK -1 -1\r\n+OK 0 x\r\n",
		"+ok hello\r\n+OK\r\n1 2\r\n.\r\n+OK\r\n1 a b\r\n..x\r\n.\r\n",
		"HELLO\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		apopTimestamp(string(data))
		parseScanListing(data)
		for _, line := range bytes.Split(data, []byte("\n")) {
			line = bytes.TrimSuffix(line, []byte("\r"))
			checkStatusLine(t, line)
		}

		for _, bufSize := range []int{readBufferSize, 16} {
			c, err := newClient(&streamConn{r: bytes.NewReader(data)}, &Options{MaxLineLength: 256}, bufSize)
			checkErr(t, err)
			if err != nil {
				return
			}
			_, _, err = c.Stat()
			checkErr(t, err)
			_, err = c.ListOne(1)
			checkErr(t, err)
			_, err = c.UidlOne(1)
			checkErr(t, err)
			_, err = c.List()
			checkErr(t, err)
			_, err = c.Uidl()
			checkErr(t, err)
			checkErr(t, c.Noop())
		}
	})
}

// FuzzCapa feeds any bytes as a CAPA listing: parsing never panics, and the
// flags agree with Raw.
func FuzzCapa(f *testing.F) {
	for _, s := range []string{
		"TOP\r\nUSER\r\nSASL PLAIN LOGIN\r\nRESP-CODES\r\nLOGIN-DELAY 900\r\nPIPELINING\r\nEXPIRE NEVER\r\nUIDL\r\nIMPLEMENTATION x y\r\n.\r\n",
		"STLS\r\nUTF8 USER\r\n\r\n .\r\n..x\r\n.\r\n",
		"sasl\r\nimplementation\r\n  PIPELINING  \r\n.\r\n",
		"\x00\xff\r\n.\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		caps := parseCapa(strings.Split(string(data), "\n"))
		if _, ok := caps.Raw["PIPELINING"]; ok != caps.Pipelining {
			t.Fatalf("Pipelining %v but Raw %v", caps.Pipelining, caps.Raw)
		}
		for _, bufSize := range []int{readBufferSize, 16} {
			conn := &streamConn{r: io.MultiReader(strings.NewReader("+OK\r\n+OK\r\n"), bytes.NewReader(data))}
			c, err := newClient(conn, &Options{MaxLineLength: 256}, bufSize)
			if err != nil {
				t.Fatal(err)
			}
			caps, err = c.Capabilities()
			checkErr(t, err)
			if err == nil {
				if _, ok := caps.Raw["STLS"]; ok != caps.STLS {
					t.Fatalf("STLS %v but Raw %v", caps.STLS, caps.Raw)
				}
			}
		}
	})
}
