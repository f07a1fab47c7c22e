package imapappend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
)

// scriptedIMAP is a fake IMAP server for one connection: it greets with
// caps, accepts any AUTHENTICATE PLAIN, and hands the rest of the session
// to script, which reads commands and answers as the test wants.
type scriptedIMAP struct {
	ln     net.Listener
	caps   string
	script func(s *imapScript)
	done   chan error
}

// imapScript is the server side of one scripted session.
type imapScript struct {
	br *bufio.Reader
	w  io.Writer
}

// command reads one command line. When it ends in a literal, command
// answers "+" if the literal is synchronizing and reads it.
func (s *imapScript) command() (tag, line string, literal []byte, err error) {
	l, err := s.br.ReadString('\n')
	if err != nil {
		return "", "", nil, err
	}
	l = strings.TrimRight(l, "\r\n")
	tag, line, _ = strings.Cut(l, " ")
	if i := strings.LastIndexByte(line, '{'); i >= 0 && strings.HasSuffix(line, "}") {
		size := strings.TrimSuffix(line[i+1:len(line)-1], "+")
		n, err := strconv.Atoi(size)
		if err != nil {
			return "", "", nil, err
		}
		if !strings.HasSuffix(line, "+}") {
			fmt.Fprintf(s.w, "+ go ahead\r\n")
		}
		literal = make([]byte, n)
		if _, err := io.ReadFull(s.br, literal); err != nil {
			return "", "", nil, err
		}
		rest, err := s.br.ReadString('\n')
		if err != nil || rest != "\r\n" {
			return "", "", nil, fmt.Errorf("after the literal: %q, %v", rest, err)
		}
	}
	return tag, line, literal, nil
}

func (s *imapScript) send(format string, args ...any) {
	fmt.Fprintf(s.w, format+"\r\n", args...)
}

func newScriptedIMAP(t *testing.T, caps string, script func(s *imapScript)) *scriptedIMAP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &scriptedIMAP{ln: ln, caps: caps, script: script, done: make(chan error, 1)}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			srv.done <- err
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		s := &imapScript{br: bufio.NewReader(conn), w: conn}
		s.send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] scripted")
		tag, line, _, err := s.command()
		if err != nil || !strings.HasPrefix(line, "AUTHENTICATE PLAIN ") {
			srv.done <- fmt.Errorf("login: %q, %v", line, err)
			return
		}
		s.send("%s OK [CAPABILITY %s] logged in", tag, caps)
		script(s)
		srv.done <- nil
	}()
	t.Cleanup(func() { ln.Close() })
	return srv
}

// dial logs in to the scripted server through a Setup, as bridge's dial.go
// does, and starts a Client on the connection.
func (srv *scriptedIMAP) dial(t *testing.T, timeout time.Duration) *Client {
	t.Helper()
	conn, err := net.Dial("tcp", srv.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := NewSetup(conn)
	if _, err := s.Greeting(); err != nil {
		t.Fatal(err)
	}
	caps, err := s.Authenticate(sasl.NewPlainClient("", "u", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(s.NetConn(), caps, &Options{Timeout: timeout})
	t.Cleanup(c.Close)
	return c
}

// appendBytes appends b to mailbox.
func appendBytes(c *Client, mailbox string, b []byte, opts *imap.AppendOptions) (*imap.AppendData, error) {
	return c.Append(context.Background(), mailbox, bytes.NewReader(b), int64(len(b)), opts)
}

// TestClientPipelines shows that with LITERAL+ the APPENDs do not wait
// for one another: the server reads every command, literal and all, before
// it answers any, and answers them in reverse order.
func TestClientPipelines(t *testing.T) {
	const n = 5
	lines := make(chan string, n)
	srv := newScriptedIMAP(t, "IMAP4rev1 LITERAL+ UIDPLUS", func(s *imapScript) {
		type cmd struct {
			tag  string
			body []byte
		}
		var cmds []cmd
		for range n {
			tag, line, lit, err := s.command()
			if err != nil {
				lines <- "error: " + err.Error()
				return
			}
			lines <- line
			cmds = append(cmds, cmd{tag, lit})
		}
		for i := len(cmds) - 1; i >= 0; i-- {
			// The UID is the message's number, so that each caller can
			// check it got the reply to its own APPEND.
			uid := strings.TrimPrefix(string(cmds[i].body), "message ")
			s.send("* %d EXISTS", n-i)
			s.send("%s OK [APPENDUID 7 %s] Append completed.", cmds[i].tag, uid)
		}
	})
	c := srv.dial(t, 5*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	date := time.Date(2024, 3, 5, 14, 7, 9, 0, time.FixedZone("", -5*3600))
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, err := appendBytes(c, "Archive/Büro", []byte(fmt.Sprintf("message %d", i)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}, Time: date})
			if err != nil {
				errs <- err
				return
			}
			if data.UIDValidity != 7 || data.UID != imap.UID(i) {
				errs <- fmt.Errorf("message %d got UIDVALIDITY %d UID %d", i, data.UIDValidity, data.UID)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	close(lines)
	for line := range lines {
		if !strings.HasPrefix(line, `APPEND "Archive/B&APw-ro" (\Seen) " 5-Mar-2024 14:07:09 -0500" {9+}`) {
			t.Errorf("server got %q", line)
		}
	}
}

// TestClientSyncLiteral: without LITERAL+ the client waits for "+", and a
// refusal instead of "+" ends that APPEND alone, with the server's error.
func TestClientSyncLiteral(t *testing.T) {
	var got []string
	srv := newScriptedIMAP(t, "IMAP4rev1 UIDPLUS", func(s *imapScript) {
		// The first APPEND is refused before its literal.
		l, _ := s.br.ReadString('\n')
		got = append(got, l)
		tag, _, _ := strings.Cut(l, " ")
		s.send("%s NO [TRYCREATE] No such mailbox", tag)
		tag, line, lit, err := s.command()
		got = append(got, line, string(lit), fmt.Sprint(err))
		s.send("%s OK [APPENDUID 1 1] done", tag)
	})
	c := srv.dial(t, 5*time.Second)
	_, err := appendBytes(c, "Nope", []byte("hello"), nil)
	var ierr *imap.Error
	if !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeTryCreate {
		t.Fatalf("first APPEND: %v, want NO [TRYCREATE]", err)
	}
	data, err := appendBytes(c, "INBOX", []byte("hello"), nil)
	if err != nil || data.UID != 1 {
		t.Fatalf("second APPEND: %v, %v", data, err)
	}
	<-srv.done
	want := []string{"P1 APPEND \"Nope\" {5}\r\n", `APPEND "INBOX" {5}`, "hello", "<nil>"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("server got %q, want %q", got, want)
	}
}

// TestClientFailures covers what ends a connection, and what each
// pending APPEND is told.
func TestClientFailures(t *testing.T) {
	tests := []struct {
		name    string
		caps    string
		script  func(s *imapScript)
		timeout time.Duration
		check   func(t *testing.T, err error)
	}{
		{
			name: "BYE then close",
			caps: "IMAP4rev1 LITERAL+",
			script: func(s *imapScript) {
				s.command()
				s.send("* BYE Server shutting down.")
			},
			check: func(t *testing.T, err error) {
				var ierr *imap.Error
				if !errors.As(err, &ierr) || ierr.Type != imap.StatusResponseTypeBye {
					t.Errorf("got %v, want the BYE", err)
				}
				// Not a NO or BAD: the caller cannot tell whether the
				// message was stored.
				if ierr != nil && ierr.Type != imap.StatusResponseTypeBye {
					t.Errorf("got a %s", ierr.Type)
				}
			},
		},
		{
			name: "no tagged reply",
			caps: "IMAP4rev1 LITERAL+",
			script: func(s *imapScript) {
				s.command()
				time.Sleep(2 * time.Second)
			},
			timeout: 200 * time.Millisecond,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("got %v, want a deadline error", err)
				}
				var ierr *imap.Error
				if errors.As(err, &ierr) {
					t.Errorf("a timeout reported as the server's %v", ierr)
				}
			},
		},
		{
			name: "endless line",
			caps: "IMAP4rev1 LITERAL+",
			script: func(s *imapScript) {
				s.command()
				s.w.Write(bytes.Repeat([]byte("x"), 200<<10))
			},
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "longer than 64 KiB") {
					t.Errorf("got %v, want a too-long line", err)
				}
			},
		},
		{
			name: "reply to a command never sent",
			caps: "IMAP4rev1 LITERAL+",
			script: func(s *imapScript) {
				s.command()
				s.send("Z9 OK what?")
			},
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "unknown command") {
					t.Errorf("got %v, want an unknown tag", err)
				}
			},
		},
		{
			name: "over APPENDLIMIT: refused without sending",
			caps: "IMAP4rev1 LITERAL+ APPENDLIMIT=4",
			script: func(s *imapScript) {
				// Were the APPEND sent, it would succeed.
				if tag, line, _, err := s.command(); err == nil && strings.HasPrefix(line, "APPEND") {
					s.send("%s OK [APPENDUID 1 1] stored", tag)
				}
			},
			check: func(t *testing.T, err error) {
				var ierr *imap.Error
				if !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeTooBig {
					t.Errorf("got %v, want TOOBIG", err)
				}
				if ierr != nil && ierr.Type != imap.StatusResponseTypeNo {
					t.Errorf("got a %s, want NO", ierr.Type)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newScriptedIMAP(t, tt.caps, tt.script)
			c := srv.dial(t, orDefault(tt.timeout, 5*time.Second))
			_, err := appendBytes(c, "INBOX", []byte("hello"), nil)
			tt.check(t, err)
		})
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func TestQuoteMailbox(t *testing.T) {
	tests := []struct{ in, want string }{
		{"INBOX", `"INBOX"`},
		{"Archive/Büro", `"Archive/B&APw-ro"`},
		{"日本語", `"&ZeVnLIqe-"`},
		{"R&D", `"R&-D"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"😀", `"&2D3eAA-"`},
	}
	for _, tt := range tests {
		if got := quoteMailbox(tt.in); got != tt.want {
			t.Errorf("quoteMailbox(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestClientCancelledBeforeSending: an APPEND whose context is done is not
// sent at all, so its outcome is known, and the connection goes on.
func TestClientCancelledBeforeSending(t *testing.T) {
	got := make(chan string, 2)
	srv := newScriptedIMAP(t, "IMAP4rev1 LITERAL+ UIDPLUS", func(s *imapScript) {
		tag, line, lit, err := s.command()
		got <- fmt.Sprintf("%s %s %s %v", tag, line, lit, err)
		s.send("%s OK [APPENDUID 1 1] done", tag)
	})
	c := srv.dial(t, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Append(ctx, "INBOX", strings.NewReader("never"), 5, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled APPEND: %v, want context.Canceled", err)
	}
	if err := c.Create(ctx, "Box"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled CREATE: %v, want context.Canceled", err)
	}
	if _, err := appendBytes(c, "INBOX", []byte("sent"), nil); err != nil {
		t.Fatal(err)
	}
	if g, want := <-got, `P1 APPEND "INBOX" {4+} sent <nil>`; g != want {
		t.Errorf("server got %q, want %q", g, want)
	}
}

// TestClientShortReader: a reader that ends before the announced size
// cannot finish the literal, so the connection ends rather than let the
// next command's bytes complete it.
func TestClientShortReader(t *testing.T) {
	srv := newScriptedIMAP(t, "IMAP4rev1 LITERAL+", func(s *imapScript) {
		s.br.ReadString('\n') // read the command, never the literal
		time.Sleep(time.Second)
	})
	c := srv.dial(t, 5*time.Second)
	_, err := c.Append(context.Background(), "INBOX", strings.NewReader("short"), 10, nil)
	if err == nil || !strings.Contains(err.Error(), "after 5 of its 10 bytes") {
		t.Fatalf("got %v, want a short message", err)
	}
	if _, err := appendBytes(c, "INBOX", []byte("next"), nil); err == nil {
		t.Error("the connection went on after a half-sent literal")
	}
}

// TestSetupHandsOverReadAhead: bytes the server sent right after the
// login reply, read ahead by the Setup, reach the Client: here a BYE, which
// the Client must report when the connection then ends.
func TestSetupHandsOverReadAhead(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		br := bufio.NewReader(server)
		io.WriteString(server, "* OK [CAPABILITY IMAP4rev1 LITERAL+] hi\r\n")
		br.ReadString('\n')
		// The login reply and the BYE in one write, so that the Setup
		// reads both at once.
		io.WriteString(server, "S1 OK [CAPABILITY IMAP4rev1 LITERAL+] in\r\n* BYE going away\r\n")
		br.ReadString('\n') // the APPEND; then the connection ends
	}()
	s := NewSetup(client)
	if _, err := s.Greeting(); err != nil {
		t.Fatal(err)
	}
	caps, err := s.Login("u", "pw")
	if err != nil || !caps.Has(imap.CapLiteralPlus) {
		t.Fatalf("login: %v, caps %v", err, caps)
	}
	c := NewClient(s.NetConn(), caps, &Options{Timeout: 5 * time.Second})
	defer c.Close()
	_, err = appendBytes(c, "INBOX", []byte("x"), nil)
	var ierr *imap.Error
	if !errors.As(err, &ierr) || ierr.Type != imap.StatusResponseTypeBye {
		t.Fatalf("APPEND: %v; want the BYE that was read ahead", err)
	}
}
