package pop3

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// TestBodyReader proves the unstuffing rules of Retr on every kind of line
// and that the bytes after the terminator are left for the next reply.
// Each case runs with several read patterns, which must all give the same
// bytes.
func TestBodyReader(t *testing.T) {
	mb := strings.Repeat("x", 1<<20)
	tests := []struct {
		name string
		wire string // what follows "+OK\r\n" on the wire
		want string // the message; "" with truncated
		cut  bool   // the stream ends before the terminator
	}{
		{name: "plain", wire: "Subject: x\r\n\r\nhello\r\n.\r\n", want: "Subject: x\r\n\r\nhello\r\n"},
		{name: "empty body", wire: ".\r\n", want: ""},
		{name: "single empty line", wire: "\r\n.\r\n", want: "\r\n"},
		{name: "leading dot", wire: "..hidden\r\n.\r\n", want: ".hidden\r\n"},
		{name: "two leading dots", wire: "...\r\n.\r\n", want: "..\r\n"},
		{name: "dot line inside", wire: "a\r\n..\r\nb\r\n.\r\n", want: "a\r\n.\r\nb\r\n"},
		{name: "dot line first", wire: "..\r\n.\r\n", want: ".\r\n"},
		{name: "dot line last", wire: "a\r\n..\r\n.\r\n", want: "a\r\n.\r\n"},
		{name: "dot not at line start", wire: "a.b\r\n x.\r\n.\r\n", want: "a.b\r\n x.\r\n"},
		{name: "bare LF lines", wire: "a\nb\n.\r\n", want: "a\nb\n"},
		{name: "bare LF then stuffed line", wire: "a\n..b\n.\r\n", want: "a\n.b\n"},
		{name: "terminator after bare LF", wire: "abc\n.\r\n", want: "abc\n"},
		{name: "bare CR", wire: "a\rb\r\r\n.\r\n", want: "a\rb\r\r\n"},
		{name: "dot after bare CR is data", wire: "a\r.b\r\n.\r\n", want: "a\r.b\r\n"},
		{name: "NUL and 8-bit", wire: "\x00\xff\xfe\x80 caf\xc3\xa9\r\n.\r\n", want: "\x00\xff\xfe\x80 caf\xc3\xa9\r\n"},
		{name: "dot LF is a stuffed line, not the end", wire: ".\n.\r\n", want: "\n"},
		{name: "dot CR X is a stuffed line", wire: ".\rX\r\n.\r\n", want: "\rX\r\n"},
		{name: "dot CR CR LF is a stuffed line", wire: ".\r\r\n.\r\n", want: "\r\r\n"},
		{name: "unstuffed dot line is unstuffed anyway", wire: ".abc\r\n.\r\n", want: "abc\r\n"},
		{name: "1 MB line", wire: mb + "\r\n.\r\n", want: mb + "\r\n"},
		{name: "1 MB stuffed line", wire: "." + mb + "\r\n.\r\n", want: mb + "\r\n"},
		{name: "1 MB line of dots", wire: ".." + strings.Repeat(".", 1<<20) + "\r\n.\r\n", want: "." + strings.Repeat(".", 1<<20) + "\r\n"},
		{name: "cut: nothing", wire: "", cut: true},
		{name: "cut: no terminator", wire: "abc\r\n", cut: true},
		{name: "cut: half terminator", wire: "abc\r\n.\r", cut: true},
		{name: "cut: dot", wire: "abc\r\n.", cut: true},
		{name: "cut: no line end", wire: "abc", cut: true},
		{name: "cut: body without final CRLF cannot end", wire: "abc.\r\n", cut: true},
		{name: "cut: inside 1 MB line", wire: mb, cut: true},
		{name: "cut: dot LF is no terminator", wire: "abc\r\n.\n", cut: true},
	}
	type mode struct {
		name    string
		bufSize int                       // the client's read buffer
		conn    func(io.Reader) io.Reader // how the network delivers
		read    func(io.Reader) io.Reader // how the caller reads; nil: io.Copy, which uses WriteTo
	}
	same := func(r io.Reader) io.Reader { return r }
	modes := []mode{
		{"whole", readBufferSize, same, same},
		{"caller reads 1 byte", readBufferSize, same, iotest.OneByteReader},
		{"network gives 1 byte", readBufferSize, iotest.OneByteReader, same},
		{"halves", readBufferSize, iotest.HalfReader, iotest.HalfReader},
		{"halves, 16-byte buffer", 16, iotest.HalfReader, iotest.HalfReader},
		{"WriteTo", readBufferSize, same, nil},
		{"WriteTo, 16-byte buffer", 16, same, nil},
		{"WriteTo, network gives 1 byte", readBufferSize, iotest.OneByteReader, nil},
	}
	for _, tc := range tests {
		for _, m := range modes {
			if len(tc.wire) > 4096 && strings.Contains(m.name, "1 byte") {
				continue // byte at a time over a megabyte adds nothing but time
			}
			t.Run(tc.name+"/"+m.name, func(t *testing.T) {
				wire := "+OK ready\r\n+OK\r\n" + tc.wire
				if !tc.cut {
					wire += "+OK next\r\n"
				}
				c, err := newClient(&streamConn{r: m.conn(strings.NewReader(wire))}, nil, m.bufSize)
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
				if tc.cut {
					if !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("error = %v, want io.ErrUnexpectedEOF", err)
					}
					if !strings.HasPrefix(err.Error(), "pop3: RETR 1: ") {
						t.Errorf("error %q does not name the command", err)
					}
					if err := c.Noop(); !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Errorf("NOOP after a cut body = %v, want the cut error", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("error = %v", err)
				}
				if !bytes.Equal(got, []byte(tc.want)) {
					t.Fatalf("body = %.80q (%d bytes), want %.80q (%d bytes)", got, len(got), tc.want, len(tc.want))
				}
				if err := c.Noop(); err != nil {
					t.Fatalf("NOOP after the body: %v (terminator not consumed exactly)", err)
				}
			})
		}
	}
}

// TestBodyStreamsLongLine proves that a line is handed to the caller before
// its end has arrived: a reader that waited for line ends would hang here.
func TestBodyStreamsLongLine(t *testing.T) {
	const first = 200 << 10
	gotFirst := make(chan struct{})
	conn := startServer(t, func(s *fakeServer) {
		s.send("+OK ready\r\n")
		s.expect("RETR 1\r\n")
		s.send("+OK\r\n" + strings.Repeat("a", first))
		<-gotFirst
		s.send("b\r\n.\r\n")
		s.expectClose()
	})
	c, err := NewClient(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body, err := c.Retr(1)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, first)
	if _, err := io.ReadFull(body, buf); err != nil {
		t.Fatalf("reading the first part of an unfinished line: %v", err)
	}
	close(gotFirst)
	rest, err := io.ReadAll(body)
	if err != nil || string(rest) != "b\r\n" {
		t.Fatalf("rest = %q, %v", rest, err)
	}
}

// TestBodyMemory proves that a 100 MB message that is a single line passes
// through with memory that does not depend on its size.
func TestBodyMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MB")
	}
	const size = 100 << 20
	conn := &streamConn{r: io.MultiReader(
		strings.NewReader("+OK ready\r\n+OK\r\n.."),
		&repeatReader{b: '.', n: size},
		strings.NewReader("\r\n.\r\n"),
	)}
	c, err := NewClient(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.Retr(1)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n, err := io.CopyBuffer(io.Discard, body, make([]byte, 32<<10))
	runtime.ReadMemStats(&after)
	if err != nil || n != size+1+2 {
		t.Fatalf("copied %d, %v; want %d", n, err, size+3)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("streaming a 100 MB line allocated %d bytes", grew)
	}
}
