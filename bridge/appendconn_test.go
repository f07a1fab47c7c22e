package bridge

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

func (srv *scriptedIMAP) dial(t *testing.T) *appendConn {
	t.Helper()
	ep := &Endpoint{Addr: srv.ln.Addr().String(), Username: "u", TLS: TLSNone, Timeout: 5 * time.Second,
		Secret: func(context.Context) (string, error) { return "pw", nil }}
	c, err := dialAppendConn(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func memSpool(t *testing.T, b []byte) *spool {
	t.Helper()
	sp, err := spoolMessage(bytes.NewReader(b), 0, 1<<20, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

// TestAppendConnPipelines shows that with LITERAL+ the APPENDs do not wait
// for one another: the server reads every command, literal and all, before
// it answers any, and answers them in reverse order.
func TestAppendConnPipelines(t *testing.T) {
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
	c := srv.dial(t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	date := time.Date(2024, 3, 5, 14, 7, 9, 0, time.FixedZone("", -5*3600))
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sp := memSpool(t, []byte(fmt.Sprintf("message %d", i)))
			data, err := c.Append("Archive/Büro", sp, &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}, Time: date}, 5*time.Second)
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

// TestAppendConnSyncLiteral: without LITERAL+ the client waits for "+", and a
// refusal instead of "+" ends that APPEND alone, with the server's error.
func TestAppendConnSyncLiteral(t *testing.T) {
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
	c := srv.dial(t)
	_, err := c.Append("Nope", memSpool(t, []byte("hello")), nil, 5*time.Second)
	var ierr *imap.Error
	if !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeTryCreate {
		t.Fatalf("first APPEND: %v, want NO [TRYCREATE]", err)
	}
	if kind, certain := classifyAppendError(err); kind != errTryCreate || !certain {
		t.Errorf("classified as %v, certain %v", kind, certain)
	}
	data, err := c.Append("INBOX", memSpool(t, []byte("hello")), nil, 5*time.Second)
	if err != nil || data.UID != 1 {
		t.Fatalf("second APPEND: %v, %v", data, err)
	}
	<-srv.done
	want := []string{"P2 APPEND \"Nope\" {5}\r\n", `APPEND "INBOX" {5}`, "hello", "<nil>"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("server got %q, want %q", got, want)
	}
}

// TestAppendConnFailures covers what ends a connection, and what each
// pending APPEND is told.
func TestAppendConnFailures(t *testing.T) {
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
				if _, certain := classifyAppendError(err); certain {
					t.Error("outcome classified as known")
				}
				if !isTemporary(err) {
					t.Error("a dropped connection should be retried")
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
				if _, certain := classifyAppendError(err); certain {
					t.Error("outcome classified as known")
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
				if kind, certain := classifyAppendError(err); kind != errRefused || !certain {
					t.Errorf("classified as %v, certain %v; want a refusal", kind, certain)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newScriptedIMAP(t, tt.caps, tt.script)
			c := srv.dial(t)
			timeout := orDefault(tt.timeout, 5*time.Second)
			_, err := c.Append("INBOX", memSpool(t, []byte("hello")), nil, timeout)
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
