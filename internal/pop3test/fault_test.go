package pop3test

import (
	"encoding/base64"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFaultRefuses proves that a refusing fault replies with the configured
// code and text instead of executing the command.
func TestFaultRefuses(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
		want  string
	}{
		{"code and text", Fault{Command: "DELE", ErrCode: "SYS/TEMP", ErrText: "try later"}, "-ERR [SYS/TEMP] try later"},
		{"text only", Fault{Command: "dele", ErrText: "try later"}, "-ERR try later"},
		{"code only", Fault{Command: "DELE", ErrCode: "SYS/PERM"}, "-ERR [SYS/PERM] injected fault"},
		{"matching Arg", Fault{Command: "DELE", Arg: "1", ErrCode: "SYS/TEMP", ErrText: "x"}, "-ERR [SYS/TEMP] x"},
		{"other Arg", Fault{Command: "DELE", Arg: "2", ErrCode: "SYS/TEMP", ErrText: "x"}, "+OK message 1 deleted"},
		{"other command", Fault{Command: "RETR", ErrCode: "SYS/TEMP", ErrText: "x"}, "+OK message 1 deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{}, threeMessages...)
			s.SetFault(tt.fault)
			c := dial(t, s)
			c.login()
			if got := c.cmd("DELE 1"); got != tt.want {
				t.Fatalf("DELE 1 = %q, want %q", got, tt.want)
			}
			c.expect("QUIT", "+OK")
			// A refused DELE must not have marked the message.
			wantLeft := 3
			if strings.HasPrefix(tt.want, "+OK") {
				wantLeft = 2
			}
			if got := len(s.Messages()); got != wantLeft {
				t.Errorf("%d messages left, want %d", got, wantLeft)
			}
		})
	}
}

// TestFaultNth proves that Nth selects one match, counted across sessions
// over the server's lifetime, and that 0 selects every match.
func TestFaultNth(t *testing.T) {
	tests := []struct {
		name string
		nth  int
		want []bool // whether each RETR 1, in order, is refused
	}{
		{"every", 0, []bool{true, true, true, true}},
		{"first", 1, []bool{true, false, false, false}},
		{"third", 3, []bool{false, false, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{}, threeMessages...)
			s.SetFault(Fault{Command: "RETR", Nth: tt.nth, ErrCode: "SYS/TEMP", ErrText: "nth"})
			var got []bool
			// Two sessions of two RETRs each: the count carries over.
			for range 2 {
				c := dial(t, s)
				c.login()
				for range 2 {
					reply := c.cmd("RETR 1")
					got = append(got, strings.HasPrefix(reply, "-ERR [SYS/TEMP] nth"))
					if strings.HasPrefix(reply, "+OK") {
						c.wireBody()
					}
				}
				c.expect("QUIT", "+OK")
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("refused = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFaultCutAfter proves that CutAfter writes exactly that many bytes of
// the reply and then closes the connection, cutting a RETR body in the
// middle, and that a CutAfter longer than the reply sends all of it.
func TestFaultCutAfter(t *testing.T) {
	data := []byte("Subject: long\r\n\r\n" + strings.Repeat(".line of the body\r\n", 50))
	full := string(okReply("967 octets")) + string(WireBody(data))
	if len(data) != 967 {
		t.Fatalf("test message is %d bytes, want 967", len(data))
	}
	tests := []struct {
		name     string
		cutAfter int
		want     string
	}{
		{"in status line", 3, full[:3]},
		{"mid body", 200, full[:200]},
		{"one byte short", len(full) - 1, full[:len(full)-1]},
		{"longer than reply", len(full) + 100, full},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{}, Message{UIDL: "long", Data: data})
			s.SetFault(Fault{Command: "RETR", CutAfter: tt.cutAfter})
			c := dial(t, s)
			c.login()
			c.expect("DELE 1", "+OK")
			c.expect("RSET", "+OK")
			// The NOOP rides in the same write: its reply must not be
			// sent, since the connection is cut during RETR.
			c.send("RETR 1", "NOOP")
			if got := string(c.untilEOF()); got != tt.want {
				t.Errorf("got %d bytes %q..., want %d bytes", len(got), got[:min(len(got), 40)], len(tt.want))
			}
			loginEventually(t, s).expect("STAT", "+OK 1 967")
		})
	}
}

// TestFaultCutKeepsEarlierReplies proves that a cut applies to the faulty
// command's reply only: replies to commands pipelined before it are sent
// whole.
func TestFaultCutKeepsEarlierReplies(t *testing.T) {
	s := startServer(t, Config{}, threeMessages...)
	s.SetFault(Fault{Command: "RETR", Arg: "2", CutAfter: 4})
	c := dial(t, s)
	c.login()
	c.send("RETR 1", "RETR 2")
	want := string(okReply("22 octets")) + string(WireBody(threeMessages[0].Data)) + "+OK "
	if got := string(c.untilEOF()); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestFaultStall proves that Stall delays the reply, and that Close cuts a
// long stall short instead of waiting for it.
func TestFaultStall(t *testing.T) {
	t.Run("delays reply", func(t *testing.T) {
		s := startServer(t, Config{})
		s.SetFault(Fault{Command: "NOOP", Stall: 30 * time.Millisecond})
		c := dial(t, s)
		start := time.Now()
		c.expect("NOOP", "-ERR") // NOOP is not valid before login
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Errorf("reply after %v, want at least 30ms", d)
		}
	})
	t.Run("aborted by Close", func(t *testing.T) {
		s := startServer(t, Config{})
		s.SetFault(Fault{Command: "NOOP", Stall: time.Hour})
		c := dial(t, s)
		c.send("NOOP")
		// Wait until the server has the command, so that Close hits the
		// stall rather than the read.
		for !slices.Contains(s.Log(), "NOOP") {
			time.Sleep(time.Millisecond)
		}
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("Close: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not return while a command stalled")
		}
		if got := c.untilEOF(); len(got) != 0 {
			t.Errorf("stalled command got reply %q", got)
		}
	})
}

// TestFaultHook proves that Hook runs when the fault fires, on every firing
// match, and before the reply is written.
func TestFaultHook(t *testing.T) {
	s := startServer(t, Config{}, threeMessages...)
	// entered is buffered and release is closed at cleanup (before the
	// server's Close, cleanups running last-in first-out), so that a
	// failing test cannot leave the hook blocked and Close waiting on it.
	entered := make(chan struct{}, 2)
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var calls atomic.Int32
	s.SetFault(Fault{Command: "DELE", Arg: "2", Hook: func() {
		calls.Add(1)
		entered <- struct{}{}
		<-release
	}})
	c := dial(t, s)
	c.login()
	c.expect("DELE 1", "+OK")
	if n := calls.Load(); n != 0 {
		t.Fatalf("hook called %d times for a command that does not match", n)
	}
	c.send("DELE 2")
	<-entered
	// While the hook runs, no reply may arrive.
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.r.Peek(1); !isTimeout(err) {
		t.Fatalf("read while the hook ran: %v, want a timeout", err)
	}
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	releaseOnce.Do(func() { close(release) })
	if got := c.line(); got != "+OK message 2 deleted" {
		t.Errorf("DELE 2 = %q", got)
	}
	c.expect("RSET", "+OK")
	c.send("DELE 2")
	<-entered
	c.line()
	if n := calls.Load(); n != 2 {
		t.Errorf("hook called %d times, want 2", n)
	}
}

// TestFaultDrop proves that Drop closes the connection without a reply.
func TestFaultDrop(t *testing.T) {
	s := startServer(t, Config{}, threeMessages...)
	s.SetFault(Fault{Command: "UIDL", Drop: true})
	c := dial(t, s)
	c.login()
	c.send("UIDL")
	if got := c.untilEOF(); len(got) != 0 {
		t.Errorf("dropped UIDL got reply %q", got)
	}
}

// TestFaultsCombineAndClear proves that AddFault adds to the set, that
// faults firing together combine, and that SetFault(Fault{}) clears them.
func TestFaultsCombineAndClear(t *testing.T) {
	s := startServer(t, Config{}, threeMessages...)
	var hooked atomic.Bool
	s.SetFault(Fault{Command: "RETR", Hook: func() { hooked.Store(true) }})
	s.AddFault(Fault{Command: "RETR", ErrCode: "SYS/TEMP", ErrText: "first"})
	s.AddFault(Fault{Command: "RETR", ErrCode: "SYS/PERM", ErrText: "second"})
	c := dial(t, s)
	c.login()
	c.expect("RETR 1", "-ERR [SYS/TEMP] first")
	if !hooked.Load() {
		t.Error("hook of the first fault was not called")
	}
	s.SetFault(Fault{})
	c.expect("RETR 1", "+OK")
	c.wireBody()
}

// TestLogRedaction proves that Log keeps every command line, in order,
// across sessions, and never holds a password, an APOP digest or a SASL
// payload.
func TestLogRedaction(t *testing.T) {
	const secret = "apop-secret"
	s := startServer(t, Config{APOPSecret: secret}, threeMessages...)
	goodPlain := base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00" + testPass))
	badPlain := base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00wrong-password"))

	c := dial(t, s)
	digest := apopDigest(t, c.greeting, "wrong-secret")
	c.expect("user "+testUser, "+OK")
	c.expect("PASS wrong-password", "-ERR [AUTH]")
	c.expect("APOP "+testUser+" "+digest, "-ERR [AUTH]")
	c.expect("AUTH PLAIN "+badPlain, "-ERR [AUTH]")
	c.expect("AUTH PLAIN", "+ ")
	c.expect(badPlain, "-ERR [AUTH]")
	c.expect("USER "+testUser, "+OK")
	c.expect("PASS "+testPass, "+OK")
	c.expect("DELE 3", "+OK")
	c.expect("QUIT", "+OK")

	c = dial(t, s)
	c.expect("AUTH PLAIN "+goodPlain, "+OK")
	c.expect("QUIT", "+OK")

	want := []string{
		"USER " + testUser,
		"PASS <redacted>",
		"APOP " + testUser + " <redacted>",
		"AUTH PLAIN <redacted>",
		"AUTH PLAIN",
		"<redacted>",
		"USER " + testUser,
		"PASS <redacted>",
		"DELE 3",
		"QUIT",
		"AUTH PLAIN <redacted>",
		"QUIT",
	}
	log := s.Log()
	if !slices.Equal(log, want) {
		t.Errorf("Log = %q, want %q", log, want)
	}
	for _, entry := range log {
		for _, secret := range []string{"wrong-password", "open", "sesame", digest, goodPlain, badPlain} {
			if strings.Contains(entry, secret) {
				t.Errorf("Log entry %q contains the secret %q", entry, secret)
			}
		}
	}
}

// TestLineTooLong proves that an over-long command line is refused and the
// connection closed.
func TestLineTooLong(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s)
	c.send("NOOP " + strings.Repeat("x", MaxLineLength))
	if got := string(c.untilEOF()); got != "-ERR line too long\r\n" {
		t.Errorf("got %q", got)
	}
	c = dial(t, s)
	c.expect("USER "+strings.Repeat("x", MaxLineLength-len("USER \r\n")), "+OK")
}

// TestClose proves that Close ends idle and busy connections, refuses new
// ones, and can be called twice.
func TestClose(t *testing.T) {
	s := startServer(t, Config{}, threeMessages...)
	idle := dial(t, s)
	authed := dial(t, s)
	authed.login()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, c := range []*rawClient{idle, authed} {
		if got := c.untilEOF(); len(got) != 0 {
			t.Errorf("got %q after Close", got)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestConcurrentUse exercises the server from many goroutines at once, for
// the race detector: sessions compete for the maildrop while the test adds
// messages and faults and reads the log.
func TestConcurrentUse(t *testing.T) {
	s := startServer(t, Config{}, threeMessages...)
	var wg sync.WaitGroup
	var logins atomic.Int32
	for range 8 {
		wg.Go(func() {
			c := dial(t, s)
			c.expect("CAPA", "+OK")
			c.multi()
			c.expect("USER "+testUser, "+OK")
			if reply := c.cmd("PASS " + testPass); strings.HasPrefix(reply, "+OK") {
				logins.Add(1)
				c.expect("UIDL", "+OK")
				c.multi()
			} else if !strings.HasPrefix(reply, "-ERR [IN-USE]") {
				t.Errorf("PASS = %q", reply)
			}
			c.expect("QUIT", "+OK")
		})
	}
	wg.Go(func() {
		for i := range 20 {
			s.AddMessage("extra", []byte("x\r\n"))
			s.AddFault(Fault{Command: "NOOP", Nth: i + 1})
			_ = s.Log()
			_ = s.Messages()
		}
	})
	wg.Wait()
	if logins.Load() == 0 {
		t.Error("no session logged in")
	}
}
