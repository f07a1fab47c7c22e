package pop3test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestGreeting proves that the greeting carries an APOP timestamp exactly
// when an APOP secret is configured.
func TestGreeting(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want *regexp.Regexp
	}{
		{"plain", Config{}, regexp.MustCompile(`^\+OK pop3test ready$`)},
		{"apop", Config{APOPSecret: "tanstaaf"}, regexp.MustCompile(`^\+OK pop3test ready <[^<>@ ]+@pop3test>$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, startServer(t, tt.cfg))
			if !tt.want.MatchString(c.greeting) {
				t.Errorf("greeting %q does not match %v", c.greeting, tt.want)
			}
		})
	}
}

// TestAPOPTimestampsDiffer proves that each connection gets its own
// timestamp, which is what makes an APOP digest useless to replay.
func TestAPOPTimestampsDiffer(t *testing.T) {
	s := startServer(t, Config{APOPSecret: "x"})
	if a, b := dial(t, s).greeting, dial(t, s).greeting; a == b {
		t.Errorf("two connections got the same greeting %q", a)
	}
}

// TestCapa proves that CAPA offers exactly the configured capabilities.
func TestCapa(t *testing.T) {
	serverTLS, _ := testTLSConfigs(t)
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"default", Config{}, []string{"USER", "TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN", "IMPLEMENTATION pop3test"}},
		{"no top", Config{NoTop: true}, []string{"USER", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN", "IMPLEMENTATION pop3test"}},
		{"no uidl", Config{NoUIDL: true}, []string{"USER", "TOP", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN", "IMPLEMENTATION pop3test"}},
		{"no pipelining", Config{NoPipelining: true}, []string{"USER", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN", "IMPLEMENTATION pop3test"}},
		{"bare", Config{NoTop: true, NoUIDL: true, NoPipelining: true}, []string{"USER", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN", "IMPLEMENTATION pop3test"}},
		{"stls", Config{TLSConfig: serverTLS}, []string{"USER", "TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN", "STLS", "IMPLEMENTATION pop3test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, startServer(t, tt.cfg))
			c.expect("CAPA", "+OK")
			if got := c.multi(); !slices.Equal(got, tt.want) {
				t.Errorf("CAPA = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestWithheldCommandsRefused proves that NoUIDL and NoTop refuse the
// commands too, as a server without them would.
func TestWithheldCommandsRefused(t *testing.T) {
	s := startServer(t, Config{NoUIDL: true, NoTop: true}, threeMessages...)
	c := dial(t, s)
	c.login()
	c.expect("UIDL", "-ERR")
	c.expect("UIDL 1", "-ERR")
	c.expect("TOP 1 0", "-ERR")
	c.expect("RETR 1", "+OK")
	c.wireBody()
}

// TestSTLS proves that STLS upgrades the connection, that the session can
// log in over TLS, and that STLS is neither offered nor accepted twice.
func TestSTLS(t *testing.T) {
	serverTLS, clientTLS := testTLSConfigs(t)
	s := startServer(t, Config{TLSConfig: serverTLS}, threeMessages...)
	c := dial(t, s)
	c.expect("USER "+testUser, "+OK")
	c.expect("STLS", "+OK")
	tlsConn := tls.Client(c.conn, clientTLS)
	if err := tlsConn.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.conn, c.r = tlsConn, bufio.NewReader(tlsConn)

	c.expect("CAPA", "+OK")
	if capa := c.multi(); slices.Contains(capa, "STLS") {
		t.Errorf("CAPA over TLS still offers STLS: %q", capa)
	}
	c.expect("STLS", "-ERR")
	// STLS resets the authorization state, so the USER sent in plaintext
	// no longer counts.
	c.expect("PASS "+testPass, "-ERR")
	c.login()
	c.expect("STAT", "+OK 3 ")
}

// TestSTLSUnavailable proves that STLS is refused without a TLS config.
func TestSTLSUnavailable(t *testing.T) {
	dial(t, startServer(t, Config{})).expect("STLS", "-ERR")
}

// TestLogin proves that each login method accepts the right credentials,
// refuses wrong ones with the AUTH response code, and leaves the session in
// the right state.
func TestLogin(t *testing.T) {
	const secret = "tanstaaf"
	plain := func(authzid, user, pass string) string {
		return base64.StdEncoding.EncodeToString([]byte(authzid + "\x00" + user + "\x00" + pass))
	}
	tests := []struct {
		name   string
		noAPOP bool
		login  func(c *rawClient) string // returns the final reply line
		want   string                    // prefix of that line
		authed bool
	}{
		{"user pass", false, func(c *rawClient) string {
			c.expect("USER "+testUser, "+OK")
			return c.cmd("PASS " + testPass)
		}, "+OK maildrop has 3 messages", true},
		{"user pass wrong password", false, func(c *rawClient) string {
			c.expect("USER "+testUser, "+OK")
			return c.cmd("PASS open")
		}, "-ERR [AUTH] invalid credentials", false},
		{"user pass wrong user", false, func(c *rawClient) string {
			c.expect("USER bob", "+OK")
			return c.cmd("PASS " + testPass)
		}, "-ERR [AUTH] invalid credentials", false},
		{"pass without user", false, func(c *rawClient) string {
			return c.cmd("PASS " + testPass)
		}, "-ERR", false},
		{"apop", false, func(c *rawClient) string {
			return c.cmd("APOP " + testUser + " " + apopDigest(t, c.greeting, secret))
		}, "+OK", true},
		{"apop wrong secret", false, func(c *rawClient) string {
			return c.cmd("APOP " + testUser + " " + apopDigest(t, c.greeting, "guess"))
		}, "-ERR [AUTH] invalid credentials", false},
		{"apop wrong user", false, func(c *rawClient) string {
			return c.cmd("APOP bob " + apopDigest(t, c.greeting, secret))
		}, "-ERR [AUTH] invalid credentials", false},
		{"apop not configured", true, func(c *rawClient) string {
			return c.cmd("APOP " + testUser + " 0123456789abcdef0123456789abcdef")
		}, "-ERR", false},
		{"auth plain initial response", false, func(c *rawClient) string {
			return c.cmd("AUTH PLAIN " + plain("", testUser, testPass))
		}, "+OK", true},
		{"auth plain authzid same user", false, func(c *rawClient) string {
			return c.cmd("AUTH PLAIN " + plain(testUser, testUser, testPass))
		}, "+OK", true},
		{"auth plain wrong password", false, func(c *rawClient) string {
			return c.cmd("AUTH PLAIN " + plain("", testUser, "open"))
		}, "-ERR [AUTH] invalid credentials", false},
		{"auth plain other authzid", false, func(c *rawClient) string {
			return c.cmd("AUTH PLAIN " + plain("bob", testUser, testPass))
		}, "-ERR [AUTH] invalid credentials", false},
		{"auth plain malformed", false, func(c *rawClient) string {
			return c.cmd("AUTH PLAIN !!!")
		}, "-ERR", false},
		{"auth plain challenge", false, func(c *rawClient) string {
			c.expect("AUTH PLAIN", "+ ")
			return c.cmd(plain("", testUser, testPass))
		}, "+OK", true},
		{"auth plain challenge wrong password", false, func(c *rawClient) string {
			c.expect("AUTH PLAIN", "+ ")
			return c.cmd(plain("", testUser, "open"))
		}, "-ERR [AUTH] invalid credentials", false},
		{"auth plain cancelled", false, func(c *rawClient) string {
			c.expect("AUTH PLAIN", "+ ")
			return c.cmd("*")
		}, "-ERR", false},
		{"auth other mechanism", false, func(c *rawClient) string {
			return c.cmd("AUTH LOGIN")
		}, "-ERR", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{APOPSecret: secret}
			if tt.noAPOP {
				cfg.APOPSecret = ""
			}
			c := dial(t, startServer(t, cfg, threeMessages...))
			if got := tt.login(c); !strings.HasPrefix(got, tt.want) {
				t.Fatalf("login reply %q, want prefix %q", got, tt.want)
			}
			if tt.authed {
				c.expect("STAT", "+OK 3 ")
			} else {
				c.expect("STAT", "-ERR")
				// A failed attempt leaves the session able to try again.
				c.login()
			}
		})
	}
}

// TestAuthListsMechanisms proves that a bare AUTH lists PLAIN.
func TestAuthListsMechanisms(t *testing.T) {
	c := dial(t, startServer(t, Config{}))
	c.expect("AUTH", "+OK")
	if got := c.multi(); !slices.Equal(got, []string{"PLAIN"}) {
		t.Errorf("AUTH listed %q, want [PLAIN]", got)
	}
}

// TestMaildropLock proves that a second session cannot take the maildrop
// while the first holds it, and gets it back once the first ends, however
// it ends.
func TestMaildropLock(t *testing.T) {
	tests := []struct {
		name string
		// release ends the first session; it reports whether the caller
		// must poll, because the server notices a drop asynchronously.
		release func(t *testing.T, s *Server, c *rawClient) (poll bool)
	}{
		{"QUIT", func(t *testing.T, s *Server, c *rawClient) bool {
			c.expect("QUIT", "+OK")
			return false
		}},
		{"client drop", func(t *testing.T, s *Server, c *rawClient) bool {
			c.conn.Close()
			return true
		}},
		{"cut by fault", func(t *testing.T, s *Server, c *rawClient) bool {
			s.SetFault(Fault{Command: "NOOP", CutAfter: 1})
			c.send("NOOP")
			if got := string(c.untilEOF()); got != "+" {
				t.Fatalf("cut NOOP reply %q, want %q", got, "+")
			}
			return false
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{}, threeMessages...)
			first := dial(t, s)
			first.login()

			second := dial(t, s)
			second.expect("USER "+testUser, "+OK")
			second.expect("PASS "+testPass, "-ERR [IN-USE] maildrop locked")
			second.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+testUser+"\x00"+testPass)), "-ERR [IN-USE]")
			// Wrong credentials are still refused as such, not as IN-USE.
			second.expect("USER "+testUser, "+OK")
			second.expect("PASS wrong", "-ERR [AUTH]")

			if tt.release(t, s, first) {
				loginEventually(t, s)
				return
			}
			// The lock is released before the client can see the
			// session end, so logging in at once must work.
			second.login()
		})
	}
}

// TestDeleteOnlyAtQuit proves that DELE only marks messages, and that the
// marks take effect only when QUIT completes the session: every other way a
// session can end deletes nothing.
func TestDeleteOnlyAtQuit(t *testing.T) {
	all := []string{"uid-a", "uid-b", "uid-c"}
	tests := []struct {
		name string
		end  func(t *testing.T, s *Server, c *rawClient)
		want []string
	}{
		{"QUIT commits", func(t *testing.T, s *Server, c *rawClient) {
			c.expect("QUIT", "+OK pop3test signing off (1 messages left)")
		}, []string{"uid-b"}},
		{"RSET then QUIT", func(t *testing.T, s *Server, c *rawClient) {
			c.expect("RSET", "+OK maildrop has 3 messages")
			c.expect("QUIT", "+OK")
		}, all},
		{"client drop", func(t *testing.T, s *Server, c *rawClient) {
			c.conn.Close()
			loginEventually(t, s).expect("QUIT", "+OK")
		}, all},
		{"server Close", func(t *testing.T, s *Server, c *rawClient) {
			s.Close()
		}, all},
		{"cut mid-reply", func(t *testing.T, s *Server, c *rawClient) {
			s.SetFault(Fault{Command: "RETR", CutAfter: 5})
			c.send("RETR 2")
			c.untilEOF()
		}, all},
		{"QUIT dropped before update", func(t *testing.T, s *Server, c *rawClient) {
			s.SetFault(Fault{Command: "QUIT", Drop: true})
			c.send("QUIT")
			if got := c.untilEOF(); len(got) != 0 {
				t.Errorf("dropped QUIT got reply %q", got)
			}
		}, all},
		{"QUIT refused", func(t *testing.T, s *Server, c *rawClient) {
			s.SetFault(Fault{Command: "QUIT", Nth: 1, ErrCode: "SYS/TEMP", ErrText: "busy"})
			c.expect("QUIT", "-ERR [SYS/TEMP] busy")
			c.conn.Close()
			loginEventually(t, s).expect("QUIT", "+OK")
		}, all},
		{"QUIT reply cut after update", func(t *testing.T, s *Server, c *rawClient) {
			s.SetFault(Fault{Command: "QUIT", CutAfter: 2})
			c.send("QUIT")
			if got := string(c.untilEOF()); got != "+O" {
				t.Errorf("cut QUIT reply %q, want %q", got, "+O")
			}
		}, []string{"uid-b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{}, threeMessages...)
			c := dial(t, s)
			c.login()
			c.expect("DELE 1", "+OK message 1 deleted")
			c.expect("DELE 3", "+OK")
			c.expect("DELE 1", "-ERR message 1 already deleted")
			c.expect("RETR 1", "-ERR")
			c.expect("LIST 3", "-ERR")
			c.expect("STAT", "+OK 1 ")
			c.expect("LIST", "+OK 1 messages")
			if got := c.multi(); !slices.Equal(got, []string{"2 22"}) {
				t.Errorf("LIST after DELE = %q, want [2 22]", got)
			}
			if got := uidls(s); !slices.Equal(got, all) {
				t.Fatalf("maildrop before the session ended = %q, want %q", got, all)
			}
			tt.end(t, s, c)
			if got := uidls(s); !slices.Equal(got, tt.want) {
				t.Errorf("maildrop after the session = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSnapshotAtLogin proves that a session keeps the numbering it got at
// login, and that its QUIT removes exactly the messages it deleted even when
// messages arrived meanwhile.
func TestSnapshotAtLogin(t *testing.T) {
	s := startServer(t, Config{}, threeMessages...)
	c := dial(t, s)
	c.login()
	s.AddMessage("uid-d", []byte("Subject: d\r\n\r\nd\r\n"))
	c.expect("STAT", "+OK 3 ")
	c.expect("RETR 4", "-ERR no such message")
	c.expect("DELE 1", "+OK")
	c.expect("QUIT", "+OK")
	if got, want := uidls(s), []string{"uid-b", "uid-c", "uid-d"}; !slices.Equal(got, want) {
		t.Errorf("maildrop = %q, want %q", got, want)
	}
	c = dial(t, s)
	c.login()
	c.expect("UIDL", "+OK")
	if got, want := c.multi(), []string{"1 uid-b", "2 uid-c", "3 uid-d"}; !slices.Equal(got, want) {
		t.Errorf("UIDL in the next session = %q, want %q", got, want)
	}
}

// TestListUidlStat proves the sizes and ids the server reports, LIST size
// being len(Data).
func TestListUidlStat(t *testing.T) {
	s := startServer(t, Config{}, Message{UIDL: "x1", Data: []byte("a\r\n.\r\n")}, Message{UIDL: "x2", Data: nil})
	c := dial(t, s)
	c.login()
	tests := []struct {
		cmd   string
		want  string
		lines []string // for multi-line replies
	}{
		{"STAT", "+OK 2 6", nil},
		{"LIST", "+OK 2 messages (6 octets)", []string{"1 6", "2 0"}},
		{"LIST 1", "+OK 1 6", nil},
		{"LIST 3", "-ERR no such message", nil},
		{"LIST x", "-ERR invalid message number", nil},
		{"LIST +1", "-ERR invalid message number", nil},
		{"UIDL", "+OK unique-id listing follows", []string{"1 x1", "2 x2"}},
		{"UIDL 2", "+OK 2 x2", nil},
		{"UIDL 0", "-ERR invalid message number", nil},
		{"NOOP", "+OK", nil},
		{"FROB", "-ERR unknown command", nil},
		{"USER bob", "-ERR command not valid after login", nil},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			if got := c.cmd(tt.cmd); got != tt.want {
				t.Fatalf("%s = %q, want %q", tt.cmd, got, tt.want)
			}
			if tt.lines != nil {
				if got := c.multi(); !slices.Equal(got, tt.lines) {
					t.Errorf("%s lines = %q, want %q", tt.cmd, got, tt.lines)
				}
			}
		})
	}
}

// TestCommandsBeforeLogin proves that transaction commands are refused in
// the AUTHORIZATION state.
func TestCommandsBeforeLogin(t *testing.T) {
	c := dial(t, startServer(t, Config{}, threeMessages...))
	for _, cmd := range []string{"STAT", "LIST", "UIDL", "RETR 1", "TOP 1 0", "DELE 1", "RSET", "NOOP", "FROB"} {
		c.expect(cmd, "-ERR")
	}
}

// TestWireBody proves the dot-stuffing and terminator rule, and that a
// client that unstuffs after every LF gets the message back exactly when it
// is empty or ends in CRLF, and with one added CRLF otherwise.
func TestWireBody(t *testing.T) {
	tests := []struct {
		name, data, wire string
	}{
		{"empty", "", ".\r\n"},
		{"plain", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"dot lines", ".\r\n..\r\n.x\r\nmid.dle\r\n", "..\r\n...\r\n..x\r\nmid.dle\r\n.\r\n"},
		{"dot first", ".a\r\n", "..a\r\n.\r\n"},
		{"no final newline", "a\r\nb", "a\r\nb\r\n.\r\n"},
		{"only a dot", ".", "..\r\n.\r\n"},
		{"bare LF lines", "a\n.\nb\n", "a\n..\nb\n\r\n.\r\n"},
		{"dot after bare LF then CRLF end", "a\n.\r\n", "a\n..\r\n.\r\n"},
		{"ends with CR", "a\r", "a\r\r\n.\r\n"},
		{"only CRLF", "\r\n", "\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := WireBody([]byte(tt.data))
			if string(wire) != tt.wire {
				t.Errorf("WireBody(%q) = %q, want %q", tt.data, wire, tt.wire)
			}
			got, err := unstuff(wire)
			if err != nil {
				t.Fatalf("unstuff(%q): %v", wire, err)
			}
			want := tt.data
			if want != "" && !strings.HasSuffix(want, "\r\n") {
				want += "\r\n"
			}
			if string(got) != want {
				t.Errorf("round trip of %q = %q, want %q", tt.data, got, want)
			}
		})
	}
}

// TestRetrOnTheWire proves that RETR sends the size and the stuffed body
// exactly as WireBody describes.
func TestRetrOnTheWire(t *testing.T) {
	tests := []struct {
		name, data, wire string
	}{
		{"dots", "Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\nend\r\n", "Subject: dots\r\n\r\n..\r\n...\r\n..hidden\r\nend\r\n.\r\n"},
		{"empty", "", ".\r\n"},
		{"unterminated", "x\r\n.y", "x\r\n..y\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{}, Message{UIDL: "m", Data: []byte(tt.data)})
			c := dial(t, s)
			c.login()
			c.expect("RETR 1", fmt.Sprintf("+OK %d octets", len(tt.data)))
			if got := c.wireBody(); string(got) != tt.wire {
				t.Errorf("RETR body on the wire = %q, want %q", got, tt.wire)
			}
		})
	}
}

// TestTop proves that TOP sends the header, the empty line and the asked
// number of body lines, stuffed like RETR.
func TestTop(t *testing.T) {
	const msg = "Subject: t\r\nFrom: f\r\n\r\nl1\r\n.l2\r\nl3\r\n"
	tests := []struct {
		name, data, cmd, want string
	}{
		{"header only", msg, "TOP 1 0", "Subject: t\r\nFrom: f\r\n\r\n.\r\n"},
		{"two lines", msg, "TOP 1 2", "Subject: t\r\nFrom: f\r\n\r\nl1\r\n..l2\r\n.\r\n"},
		{"more lines than body", msg, "TOP 1 9", "Subject: t\r\nFrom: f\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n"},
		{"no empty line", "Subject: t\r\nX: y", "TOP 1 0", "Subject: t\r\nX: y\r\n.\r\n"},
		{"bare LF", "S: t\n\nb1\nb2\n", "TOP 1 1", "S: t\n\nb1\n\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, startServer(t, Config{}, Message{UIDL: "m", Data: []byte(tt.data)}))
			c.login()
			c.expect(tt.cmd, "+OK")
			if got := c.wireBody(); string(got) != tt.want {
				t.Errorf("%s body = %q, want %q", tt.cmd, got, tt.want)
			}
		})
	}
	t.Run("bad arguments", func(t *testing.T) {
		c := dial(t, startServer(t, Config{}, Message{UIDL: "m", Data: []byte(msg)}))
		c.login()
		for _, cmd := range []string{"TOP", "TOP 1", "TOP 1 -1", "TOP 1 x", "TOP 2 0", "TOP 1 0 0"} {
			c.expect(cmd, "-ERR")
		}
	})
}

// TestPipelining proves that commands arriving in one write are all
// answered, in order, login included, whether or not PIPELINING is
// advertised.
func TestPipelining(t *testing.T) {
	for _, noPipelining := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoPipelining=%v", noPipelining), func(t *testing.T) {
			s := startServer(t, Config{NoPipelining: noPipelining}, threeMessages...)
			c := dial(t, s)
			cmds := []string{"USER " + testUser, "PASS " + testPass, "STAT", "LIST", "UIDL 2", "RETR 1", "RETR 3", "DELE 2", "NOOP", "QUIT"}
			c.send(cmds...)

			want := func(prefix string) {
				t.Helper()
				if got := c.line(); !strings.HasPrefix(got, prefix) {
					t.Fatalf("reply %q, want prefix %q", got, prefix)
				}
			}
			want("+OK send PASS")
			want("+OK maildrop has 3 messages (66 octets)")
			want("+OK 3 66")
			want("+OK 3 messages (66 octets)")
			if got := c.multi(); !slices.Equal(got, []string{"1 22", "2 22", "3 22"}) {
				t.Fatalf("LIST lines = %q", got)
			}
			want("+OK 2 uid-b")
			for _, i := range []int{0, 2} {
				want("+OK 22 octets")
				if got, w := c.wireBody(), WireBody(threeMessages[i].Data); string(got) != string(w) {
					t.Fatalf("RETR %d body = %q, want %q", i+1, got, w)
				}
			}
			want("+OK message 2 deleted")
			want("+OK")
			want("+OK pop3test signing off (2 messages left)")
			if rest := c.untilEOF(); len(rest) != 0 {
				t.Errorf("bytes after QUIT: %q", rest)
			}
			wantLog := slices.Clone(cmds)
			wantLog[1] = "PASS <redacted>"
			if got := s.Log(); !slices.Equal(got, wantLog) {
				t.Errorf("Log = %q, want %q", got, wantLog)
			}
			if got := uidls(s); !slices.Equal(got, []string{"uid-a", "uid-c"}) {
				t.Errorf("maildrop = %q", got)
			}
		})
	}
}
