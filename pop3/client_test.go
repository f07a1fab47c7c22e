package pop3

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestTranscripts proves what each command puts on the wire, byte for byte,
// and how it reads each kind of reply.
func TestTranscripts(t *testing.T) {
	tests := []struct {
		name   string
		script []string
		run    func(t *testing.T, c *Client)
	}{
		{
			name: "USER and PASS",
			script: []string{
				"S: +OK POP3 server ready",
				"C: USER alice",
				"S: +OK",
				"C: PASS s3cret pass",
				"S: +OK maildrop locked and ready",
			},
			run: func(t *testing.T, c *Client) {
				if err := c.Login("alice", "s3cret pass"); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "APOP digest from RFC 1939",
			script: []string{
				"S: +OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
				"C: APOP mrose c4c9334bac560ecc979e58001b3e22fb",
				"S: +OK maildrop has 1 message (369 octets)",
			},
			run: func(t *testing.T, c *Client) {
				if got, want := c.APOPTimestamp(), "<1896.697170952@dbc.mtview.ca.us>"; got != want {
					t.Errorf("APOPTimestamp = %q, want %q", got, want)
				}
				if err := c.APOP("mrose", "tanstaaf"); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:   "APOP without timestamp sends nothing",
			script: []string{"S: +OK POP3 server ready"},
			run: func(t *testing.T, c *Client) {
				if c.APOPTimestamp() != "" {
					t.Errorf("APOPTimestamp = %q, want empty", c.APOPTimestamp())
				}
				if err := c.APOP("mrose", "tanstaaf"); err == nil {
					t.Fatal("APOP without timestamp succeeded")
				}
			},
		},
		{
			name: "CAPA parsed and cached",
			script: []string{
				"S: +OK ready",
				"C: CAPA",
				"S: +OK Capability list follows",
				"S: TOP",
				"S: USER",
				"S: SASL PLAIN xoauth2 OAUTHBEARER",
				"S: RESP-CODES",
				"S: LOGIN-DELAY 900",
				"S: PIPELINING",
				"S: EXPIRE 60 USER",
				"S: UIDL",
				"S: IMPLEMENTATION Shlemazle  Plotz-v302",
				"S: STLS",
				"S: UTF8 USER",
				"S: X-EXPERIMENT a b",
				"S: .",
			},
			run: func(t *testing.T, c *Client) {
				caps, err := c.Capabilities()
				if err != nil {
					t.Fatal(err)
				}
				want := &Capabilities{
					Pipelining: true, UIDL: true, Top: true, RespCodes: true, UTF8: true, STLS: true, User: true,
					SASL:           []string{"PLAIN", "XOAUTH2", "OAUTHBEARER"},
					Expire:         "60 USER",
					LoginDelay:     "900",
					Implementation: "Shlemazle  Plotz-v302",
					Raw: map[string][]string{
						"TOP": {}, "USER": {}, "SASL": {"PLAIN", "xoauth2", "OAUTHBEARER"}, "RESP-CODES": {},
						"LOGIN-DELAY": {"900"}, "PIPELINING": {}, "EXPIRE": {"60", "USER"}, "UIDL": {},
						"IMPLEMENTATION": {"Shlemazle", "Plotz-v302"}, "STLS": {}, "UTF8": {"USER"},
						"X-EXPERIMENT": {"a", "b"},
					},
				}
				if !reflect.DeepEqual(caps, want) {
					t.Errorf("caps = %+v\nwant %+v", caps, want)
				}
				if !caps.HasSASL("xoauth2") {
					t.Error("HasSASL(xoauth2) = false")
				}
				caps.SASL[0] = "CHANGED"
				again, err := c.Capabilities() // no second CAPA on the wire
				if err != nil || again.SASL[0] != "PLAIN" {
					t.Errorf("second Capabilities = %v, %v; want cached, unchanged copy", again, err)
				}
			},
		},
		{
			name: "CAPA refused",
			script: []string{
				"S: +OK ready",
				"C: CAPA",
				"S: -ERR unknown command",
			},
			run: func(t *testing.T, c *Client) {
				for i := 0; i < 2; i++ { // the refusal is cached too
					var perr *Error
					if _, err := c.Capabilities(); !errors.As(err, &perr) {
						t.Fatalf("Capabilities error = %v, want *Error", err)
					}
				}
			},
		},
		{
			name: "STAT",
			script: []string{
				"S: +OK ready",
				"C: STAT",
				"S: +OK 2 320",
			},
			run: func(t *testing.T, c *Client) {
				n, size, err := c.Stat()
				if err != nil || n != 2 || size != 320 {
					t.Fatalf("Stat = %d, %d, %v; want 2, 320, nil", n, size, err)
				}
			},
		},
		{
			name: "LIST all and one",
			script: []string{
				"S: +OK ready",
				"C: LIST",
				"S: +OK 2 messages (320 octets)",
				"S: 1 120",
				"S: 2 200 extra info allowed",
				"S: .",
				"C: LIST 2",
				"S: +OK 2 200",
			},
			run: func(t *testing.T, c *Client) {
				all, err := c.List()
				if want := []MessageInfo{{1, 120}, {2, 200}}; err != nil || !reflect.DeepEqual(all, want) {
					t.Fatalf("List = %v, %v; want %v", all, err, want)
				}
				one, err := c.ListOne(2)
				if err != nil || one != (MessageInfo{2, 200}) {
					t.Fatalf("ListOne = %v, %v", one, err)
				}
			},
		},
		{
			name: "LIST empty maildrop",
			script: []string{
				"S: +OK ready",
				"C: LIST",
				"S: +OK 0 messages",
				"S: .",
			},
			run: func(t *testing.T, c *Client) {
				all, err := c.List()
				if err != nil || len(all) != 0 {
					t.Fatalf("List = %v, %v; want empty", all, err)
				}
			},
		},
		{
			name: "UIDL all and one",
			script: []string{
				"S: +OK ready",
				"C: UIDL",
				"S: +OK",
				"S: 1 whqtswO00WBw418f9t5JxYwZ",
				"S: 2 QhdPYR:00WBw1Ph7x7",
				"S: 3 ..dot-first-is-stuffed",
				"S: 4 uid with spaces",
				"S: .",
				"C: UIDL 2",
				"S: +OK 2 QhdPYR:00WBw1Ph7x7",
			},
			run: func(t *testing.T, c *Client) {
				all, err := c.Uidl()
				want := []UIDInfo{{1, "whqtswO00WBw418f9t5JxYwZ"}, {2, "QhdPYR:00WBw1Ph7x7"}, {3, "..dot-first-is-stuffed"}, {4, "uid with spaces"}}
				if err != nil || !reflect.DeepEqual(all, want) {
					t.Fatalf("Uidl = %v, %v; want %v", all, err, want)
				}
				one, err := c.UidlOne(2)
				if err != nil || one != (UIDInfo{2, "QhdPYR:00WBw1Ph7x7"}) {
					t.Fatalf("UidlOne = %v, %v", one, err)
				}
			},
		},
		{
			name: "RETR and TOP",
			script: []string{
				"S: +OK ready",
				"C: RETR 1",
				"S: +OK 25 octets",
				"R: Subject: hi\r\n\r\n..dots\r\n.\r\n",
				"C: TOP 1 0",
				"S: +OK",
				"R: Subject: hi\r\n\r\n.\r\n",
			},
			run: func(t *testing.T, c *Client) {
				r, err := c.Retr(1)
				if err != nil {
					t.Fatal(err)
				}
				if b, err := io.ReadAll(r); err != nil || string(b) != "Subject: hi\r\n\r\n.dots\r\n" {
					t.Fatalf("RETR body = %q, %v", b, err)
				}
				r, err = c.Top(1, 0)
				if err != nil {
					t.Fatal(err)
				}
				if b, err := io.ReadAll(r); err != nil || string(b) != "Subject: hi\r\n\r\n" {
					t.Fatalf("TOP body = %q, %v", b, err)
				}
			},
		},
		{
			name: "DELE RSET NOOP QUIT",
			script: []string{
				"S: +OK ready",
				"C: DELE 1",
				"S: +OK message 1 deleted",
				"C: RSET",
				"S: +OK",
				"C: NOOP",
				"S: +OK",
				"C: QUIT",
				"S: +OK bye",
			},
			run: func(t *testing.T, c *Client) {
				for _, f := range []func() error{func() error { return c.Dele(1) }, c.Rset, c.Noop, c.Quit} {
					if err := f(); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.Noop(); err == nil {
					t.Fatal("NOOP after QUIT succeeded")
				}
			},
		},
		{
			name: "QUIT refused still closes",
			script: []string{
				"S: +OK ready",
				"C: QUIT",
				"S: -ERR some deleted messages not removed",
			},
			run: func(t *testing.T, c *Client) {
				var perr *Error
				if err := c.Quit(); !errors.As(err, &perr) {
					t.Fatalf("Quit = %v, want *Error", err)
				}
			},
		},
		{
			name: "status lines ended by bare LF are accepted",
			script: []string{
				"R: +OK ready\n",
				"C: STAT",
				"R: +OK 1 5\n",
				"C: UIDL",
				"R: +OK\n1 a\n.\n",
			},
			run: func(t *testing.T, c *Client) {
				if n, size, err := c.Stat(); err != nil || n != 1 || size != 5 {
					t.Fatalf("Stat = %d, %d, %v", n, size, err)
				}
				if u, err := c.Uidl(); err != nil || len(u) != 1 || u[0].UID != "a" {
					t.Fatalf("Uidl = %v, %v", u, err)
				}
			},
		},
		{
			name: "malformed listing is an error but keeps the session in step",
			script: []string{
				"S: +OK ready",
				"C: LIST",
				"S: +OK",
				"S: 1 12x",
				"S: 2 200",
				"S: .",
				"C: LIST 3",
				"S: +OK 4 100",
				"C: NOOP",
				"S: +OK",
			},
			run: func(t *testing.T, c *Client) {
				var perr *ProtocolError
				if _, err := c.List(); !errors.As(err, &perr) {
					t.Fatalf("List = %v, want *ProtocolError", err)
				}
				if _, err := c.ListOne(3); !errors.As(err, &perr) {
					t.Fatalf("ListOne(3) answered for 4 = %v, want *ProtocolError", err)
				}
				if err := c.Noop(); err != nil {
					t.Fatalf("NOOP after malformed listing: %v", err)
				}
			},
		},
		{
			name: "garbage status line breaks the session",
			script: []string{
				"S: +OK ready",
				"C: NOOP",
				"S: HTTP/1.1 400 Bad Request",
			},
			run: func(t *testing.T, c *Client) {
				var perr *ProtocolError
				err := c.Noop()
				if !errors.As(err, &perr) {
					t.Fatalf("Noop = %v, want *ProtocolError", err)
				}
				if got, want := err.Error(), `pop3: NOOP: malformed status line "HTTP/1.1 400 Bad Request"`; got != want {
					t.Errorf("error = %q, want %q", got, want)
				}
				if err := c.Noop(); !errors.As(err, &perr) {
					t.Fatalf("second Noop = %v, want the earlier *ProtocolError", err)
				}
			},
		},
		{
			name: "unread body is drained by the next command",
			script: []string{
				"S: +OK ready",
				"C: RETR 1",
				"S: +OK",
				"R: line one\r\n..line two\r\n.\r\n",
				"C: NOOP",
				"S: +OK",
			},
			run: func(t *testing.T, c *Client) {
				r, err := c.Retr(1)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 4)
				if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "line" {
					t.Fatalf("first bytes = %q, %v", buf, err)
				}
				if err := c.Noop(); err != nil {
					t.Fatalf("NOOP after partial read: %v", err)
				}
				if _, err := r.Read(buf); err == nil || err == io.EOF {
					t.Fatalf("read of a drained body = %v, want an error", err)
				}
			},
		},
		{
			name: "fully read body keeps returning EOF",
			script: []string{
				"S: +OK ready",
				"C: RETR 1",
				"S: +OK",
				"R: x\r\n.\r\n",
				"C: NOOP",
				"S: +OK",
			},
			run: func(t *testing.T, c *Client) {
				r, _ := c.Retr(1)
				io.ReadAll(r)
				if err := c.Noop(); err != nil {
					t.Fatal(err)
				}
				if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Fatalf("Read after end = %d, %v; want 0, EOF", n, err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := scriptClient(t, nil, tc.script)
			tc.run(t, c)
			c.Close()
		})
	}
}

// TestErrors proves the shape of refusals: text, code, Temporary, and that
// a password never shows.
func TestErrors(t *testing.T) {
	tests := []struct {
		name      string
		reply     string
		run       func(c *Client) error
		wantText  string
		wantCode  string
		temporary bool
	}{
		{"RETR SYS/TEMP", "-ERR [SYS/TEMP] try later", func(c *Client) error { _, err := c.Retr(17); return err },
			"pop3: RETR 17: [SYS/TEMP] try later", "SYS/TEMP", true},
		{"PASS AUTH", "-ERR [AUTH] invalid login", func(c *Client) error { return c.Pass("hunter2") },
			"pop3: PASS: [AUTH] invalid login", "AUTH", false},
		{"PASS IN-USE", "-ERR [IN-USE] mailbox locked", func(c *Client) error { return c.Pass("hunter2") },
			"pop3: PASS: [IN-USE] mailbox locked", "IN-USE", true},
		{"LOGIN-DELAY", "-ERR [LOGIN-DELAY] wait", func(c *Client) error { return c.Pass("hunter2") },
			"pop3: PASS: [LOGIN-DELAY] wait", "LOGIN-DELAY", true},
		{"SYS/PERM", "-ERR [SYS/PERM] gone", func(c *Client) error { return c.Dele(3) },
			"pop3: DELE 3: [SYS/PERM] gone", "SYS/PERM", false},
		{"sub-code of SYS/TEMP", "-ERR [sys/temp/disk] full", func(c *Client) error { return c.Noop() },
			"pop3: NOOP: [SYS/TEMP/DISK] full", "SYS/TEMP/DISK", true},
		{"UTF8", "-ERR [UTF8] need UTF8", func(c *Client) error { return c.User("jörg") },
			"pop3: USER: [UTF8] need UTF8", "UTF8", false},
		{"no code", "-ERR no such message", func(c *Client) error { return c.Dele(9) },
			"pop3: DELE 9: no such message", "", false},
		{"bracket that is no code", "-ERR [not a code] text", func(c *Client) error { return c.Rset() },
			"pop3: RSET: [not a code] text", "", false},
		{"bare -ERR", "-ERR", func(c *Client) error { return c.Noop() },
			"pop3: NOOP: -ERR", "", false},
		{"control characters in text", "-ERR bad\x1b[2Jthing", func(c *Client) error { return c.Noop() },
			"pop3: NOOP: bad?[2Jthing", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn := startServer(t, func(s *fakeServer) {
				s.send("+OK ready\r\n")
				<-s.lines
				s.send(tc.reply + "\r\n")
				s.expect("NOOP\r\n")
				s.send("+OK\r\n")
				s.expectClose()
			})
			c, err := NewClient(conn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = tc.run(c)
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error = %v (%T), want *Error", err, err)
			}
			if err.Error() != tc.wantText || perr.Code != tc.wantCode || perr.Temporary() != tc.temporary {
				t.Errorf("got %q code %q temporary %v; want %q code %q temporary %v",
					err.Error(), perr.Code, perr.Temporary(), tc.wantText, tc.wantCode, tc.temporary)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("password in error %q", err)
			}
			if err := c.Noop(); err != nil {
				t.Errorf("NOOP after a refusal: %v (a refusal must not break the session)", err)
			}
		})
	}
}

// TestGreeting proves that NewClient accepts only a +OK greeting and closes
// the connection otherwise.
func TestGreeting(t *testing.T) {
	tests := []struct {
		name     string
		greeting string
		check    func(t *testing.T, err error)
	}{
		{"refused", "-ERR [IN-USE] busy\r\n", func(t *testing.T, err error) {
			var perr *Error
			if !errors.As(err, &perr) || perr.Command != "greeting" || !perr.Temporary() {
				t.Errorf("err = %v, want temporary *Error for greeting", err)
			}
		}},
		{"garbage", "* OK IMAP4rev1\r\n", func(t *testing.T, err error) {
			var perr *ProtocolError
			if !errors.As(err, &perr) {
				t.Errorf("err = %v, want *ProtocolError", err)
			}
		}},
		{"+OKAY is not +OK", "+OKAY\r\n", func(t *testing.T, err error) {
			var perr *ProtocolError
			if !errors.As(err, &perr) {
				t.Errorf("err = %v, want *ProtocolError", err)
			}
		}},
		{"hang-up", "+OK rea", func(t *testing.T, err error) {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			closed := make(chan bool, 1)
			conn := startServer(t, func(s *fakeServer) {
				s.send(tc.greeting)
				if tc.name == "hang-up" {
					return
				}
				_, ok := <-s.lines
				closed <- !ok
			})
			c, err := NewClient(conn, nil)
			if err == nil {
				c.Close()
				t.Fatal("NewClient succeeded")
			}
			if !strings.HasPrefix(err.Error(), "pop3: greeting: ") {
				t.Errorf("error %q does not start with pop3: greeting:", err)
			}
			tc.check(t, err)
			if tc.name != "hang-up" && !<-closed {
				t.Error("connection not closed after a failed greeting")
			}
		})
	}
}

// TestBadArguments proves that CR, LF and NUL in an argument, and numbers
// that are not positive, are refused before anything is sent.
func TestBadArguments(t *testing.T) {
	calls := []struct {
		name string
		run  func(c *Client) error
	}{
		{"USER CRLF", func(c *Client) error { return c.User("alice\r\nDELE 1") }},
		{"USER LF", func(c *Client) error { return c.User("alice\n") }},
		{"PASS CR", func(c *Client) error { return c.Pass("se\rcret") }},
		{"PASS NUL", func(c *Client) error { return c.Pass("se\x00cret") }},
		{"Login password", func(c *Client) error { return c.Login("alice", "x\r\nDELE 1") }},
		{"APOP user", func(c *Client) error { return c.APOP("a\nb", "x") }},
		{"AUTH mechanism", func(c *Client) error { return c.Auth(&fakeMech{name: "PLAIN\r\nDELE 1"}) }},
		{"RETR 0", func(c *Client) error { _, err := c.Retr(0); return err }},
		{"TOP negative lines", func(c *Client) error { _, err := c.Top(1, -1); return err }},
		{"DELE -1", func(c *Client) error { return c.Dele(-1) }},
		{"LIST 0", func(c *Client) error { _, err := c.ListOne(0); return err }},
		{"UIDL 0", func(c *Client) error { _, err := c.UidlOne(0); return err }},
		{"RetrAll 0", func(c *Client) error { return c.RetrAll([]int{1, 0}, 2, nil) }},
		{"DeleAll 0", func(c *Client) error { return c.DeleAll([]int{0}, 2) }},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			c := scriptClient(t, nil, []string{"S: +OK <1.2@x>"}) // nothing may be sent
			err := tc.run(c)
			if !errors.Is(err, ErrBadArgument) {
				t.Fatalf("error = %v, want ErrBadArgument", err)
			}
			if found := secretsIn(err.Error(), "secret", "DELE 1", "\r", "\n"); len(found) > 0 {
				t.Errorf("error %q shows the argument: %q", err, found)
			}
			c.Close()
		})
	}
}

// fakeMech is a scripted SASL mechanism.
type fakeMech struct {
	name      string
	ir        []byte
	responses [][]byte
	err       error
}

func (m *fakeMech) Start() (string, []byte, error) { return m.name, m.ir, nil }
func (m *fakeMech) Next([]byte) ([]byte, error) {
	if m.err != nil {
		return nil, m.err
	}
	if len(m.responses) == 0 {
		return nil, errors.New("no more responses")
	}
	r := m.responses[0]
	m.responses = m.responses[1:]
	return r, nil
}

// TestScanStopsAtError checks that ScanUidl hands over each line, stops
// calling fn at its first error, and still reads the listing to its end so
// that the next command gets its own reply.
func TestScanStopsAtError(t *testing.T) {
	c := scriptClient(t, nil, []string{
		"S: +OK ready",
		"C: UIDL",
		"S: +OK",
		"S: 1 aaa",
		"S: 2 bbb",
		"S: 3 ccc",
		"S: .",
		"C: LIST",
		"S: +OK",
		"S: 1 10",
		"S: 2 20",
		"S: .",
		"C: NOOP",
		"S: +OK",
	})
	stop := errors.New("enough")
	var got []string
	err := c.ScanUidl(func(u UIDInfo) error {
		got = append(got, fmt.Sprint(u.Number, u.UID))
		if u.Number == 2 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Fatalf("ScanUidl = %v, want the error fn returned", err)
	}
	if want := []string{"1aaa", "2bbb"}; !slices.Equal(got, want) {
		t.Fatalf("fn saw %q, want %q", got, want)
	}
	var sizes []int64
	if err := c.ScanList(func(m MessageInfo) error { sizes = append(sizes, m.Size); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []int64{10, 20}; !slices.Equal(sizes, want) {
		t.Fatalf("ScanList sizes = %v, want %v", sizes, want)
	}
	if err := c.Noop(); err != nil {
		t.Fatalf("NOOP after the scans: %v", err)
	}
}
