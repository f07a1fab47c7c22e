package pop3

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeServer is the server end of a net.Pipe, driven by a test. A goroutine
// reads every line the client sends and queues it, so the client's writes
// never block on the unbuffered pipe (as they would not on TCP), and the
// test can see which commands arrived before it replied.
type fakeServer struct {
	t     *testing.T
	conn  net.Conn
	lines chan string
}

// abortServer is panicked with to end a handler after a failed expectation.
type abortServer struct{}

// startServer runs handler on the server end of a pipe and returns the
// client end. The test waits for the handler when it ends.
func startServer(t *testing.T, handler func(s *fakeServer)) net.Conn {
	t.Helper()
	client, server := net.Pipe()
	s := &fakeServer{t: t, conn: server, lines: make(chan string, 4096)}
	go func() {
		br := bufio.NewReader(server)
		for {
			l, err := br.ReadString('\n')
			if l != "" {
				s.lines <- l
			}
			if err != nil {
				close(s.lines)
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(abortServer); !ok {
					panic(r)
				}
			}
		}()
		handler(s)
	}()
	t.Cleanup(func() {
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("fake server did not finish")
		}
	})
	return client
}

// expect receives the next line the client sent and checks it byte for
// byte, line ending included.
func (s *fakeServer) expect(want string) {
	s.t.Helper()
	select {
	case got, ok := <-s.lines:
		if !ok {
			s.t.Errorf("server: want %q, client closed the connection", want)
			panic(abortServer{})
		}
		if got != want {
			s.t.Errorf("server: got %q, want %q", got, want)
			panic(abortServer{})
		}
	case <-time.After(5 * time.Second):
		s.t.Errorf("server: want %q, nothing came", want)
		panic(abortServer{})
	}
}

// expectNothing checks that the client sends nothing for a short while:
// used to prove that a client waits for a reply.
func (s *fakeServer) expectNothing() {
	s.t.Helper()
	select {
	case got, ok := <-s.lines:
		if ok {
			s.t.Errorf("server: client sent %q before it had the reply", got)
			panic(abortServer{})
		}
	case <-time.After(50 * time.Millisecond):
	}
}

// expectClose checks that the client hangs up without sending more.
func (s *fakeServer) expectClose() {
	s.t.Helper()
	select {
	case got, ok := <-s.lines:
		if ok {
			s.t.Errorf("server: unexpected %q, want the connection closed", got)
		}
	case <-time.After(5 * time.Second):
		s.t.Errorf("server: client did not close the connection")
	}
}

func (s *fakeServer) send(data string) {
	s.conn.Write([]byte(data))
}

// play runs a transcript: "C: x" is a line the client must send (CRLF is
// added), "S: x" a line the server sends (CRLF added), "R: x" raw bytes the
// server sends as they are. After the script the client must hang up.
func (s *fakeServer) play(script []string) {
	for _, step := range script {
		kind, data := step[:3], step[3:]
		switch kind {
		case "C: ":
			s.expect(data + "\r\n")
		case "S: ":
			s.send(data + "\r\n")
		case "R: ":
			s.send(data)
		default:
			s.t.Errorf("bad script step %q", step)
			panic(abortServer{})
		}
	}
	s.expectClose()
}

// scriptClient starts a client against a transcript; the script's first
// step must be the greeting.
func scriptClient(t *testing.T, opts *Options, script []string) *Client {
	t.Helper()
	return serverClient(t, opts, func(s *fakeServer) { s.play(script) })
}

// serverClient starts a client against a fake server running serve, which
// must send the greeting first; the client is closed when the test ends.
func serverClient(t *testing.T, opts *Options, serve func(*fakeServer)) *Client {
	t.Helper()
	conn := startServer(t, serve)
	c, err := NewClient(conn, opts)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// streamConn is a net.Conn over a reader, for feeding the client fixed
// bytes. Writes go to w (io.Discard if nil); deadlines are ignored.
type streamConn struct {
	r io.Reader
	w io.Writer
}

func (c *streamConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *streamConn) Write(p []byte) (int, error) {
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}
func (c *streamConn) Close() error                     { return nil }
func (c *streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

// replayConn answers every write (one command) with the same reply, after
// a greeting: a server that can RETR the same message forever.
type replayConn struct {
	streamConn
	reply []byte
	rd    bytes.Reader
}

func newReplayConn(greeting string, reply []byte) *replayConn {
	c := &replayConn{reply: reply}
	c.rd.Reset([]byte(greeting))
	c.r = &c.rd
	return c
}

func (c *replayConn) Write(p []byte) (int, error) {
	c.rd.Reset(c.reply)
	return len(p), nil
}

// repeatReader yields n copies of byte b.
type repeatReader struct {
	b byte
	n int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = r.b
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// secretsIn returns the secrets (and their base64 and digest forms, as the
// caller lists them) found in s.
func secretsIn(s string, secrets ...string) []string {
	var found []string
	for _, x := range secrets {
		if x != "" && strings.Contains(s, x) {
			found = append(found, x)
		}
	}
	return found
}
