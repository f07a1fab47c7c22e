package faultloop

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/faultproxy"
	"github.com/pop2imap/pop2imap/internal/imaptest"
	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/internal/testnet"
	"github.com/pop2imap/pop2imap/internal/testservers"
)

// hostileMessage is the one message the scripted POP3 servers hold.
var hostileMessage = []byte("From: a@example.org\r\nSubject: hostile\r\nMessage-ID: <hostile@example.org>\r\n\r\nhello\r\n")

// sendCap bounds what a scripted server sends for an "endless" reply, per
// session, so that a client which never stops reading cannot fill the disk
// or run the test forever; coming near it is itself the failure (maxBytes).
// The count includes what sits in the socket buffers, a few MB on loopback.
const sendCap = 80 << 20

// scriptedPOP3 is a POP3 server that answers as a script says, for the
// hostile-server tests. It counts the bytes it sends.
type scriptedPOP3 struct {
	sent atomic.Int64
	done chan struct{} // closed when the test ends: every session stops
	// greet writes the greeting; nil means a normal "+OK".
	greet func(w io.Writer) error
	// reply, when it returns true, has answered the command itself.
	reply func(verb, arg string, w io.Writer) (bool, error)
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func startScripted(t *testing.T, s *scriptedPOP3) string {
	t.Helper()
	s.done = make(chan struct{})
	addr := testnet.Serve(t, s.session)
	// Registered after Serve, so it runs first: hanging sessions stop
	// before Serve waits for them.
	t.Cleanup(func() { close(s.done) })
	return addr
}

func (s *scriptedPOP3) session(c net.Conn) {
	w := countingWriter{c, &s.sent}
	if s.greet != nil {
		if s.greet(w) != nil {
			return
		}
	} else if _, err := io.WriteString(w, "+OK scripted\r\n"); err != nil {
		return
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		verb = strings.ToUpper(verb)
		if s.reply != nil {
			handled, err := s.reply(verb, arg, w)
			if err != nil {
				return
			}
			if handled {
				continue
			}
		}
		var out string
		switch verb {
		case "CAPA":
			out = "+OK\r\nUSER\r\nUIDL\r\n.\r\n"
		case "STAT":
			out = fmt.Sprintf("+OK 1 %d\r\n", len(hostileMessage))
		case "UIDL":
			out = "+OK\r\n1 hostile-1\r\n.\r\n"
		case "LIST":
			out = fmt.Sprintf("+OK\r\n1 %d\r\n.\r\n", len(hostileMessage))
		case "RETR":
			out = "+OK\r\n" + string(hostileMessage) + ".\r\n"
		case "QUIT":
			io.WriteString(w, "+OK bye\r\n")
			return
		default:
			out = "+OK\r\n"
		}
		if _, err := io.WriteString(w, out); err != nil {
			return
		}
	}
}

// hang keeps a session open and silent until the test ends.
func (s *scriptedPOP3) hang() error {
	<-s.done
	return io.EOF
}

// endless writes chunk again and again until the peer stops reading or
// sendCap is reached; then it hangs.
func (s *scriptedPOP3) endless(w io.Writer, prefix string, chunk func(i int) string) error {
	if _, err := io.WriteString(w, prefix); err != nil {
		return err
	}
	var buf bytes.Buffer
	total := 0
	for i := 0; total < sendCap; {
		buf.Reset()
		for buf.Len() < 64<<10 {
			buf.WriteString(chunk(i))
			i++
		}
		n, err := w.Write(buf.Bytes())
		total += n
		if err != nil {
			return err
		}
	}
	return s.hang()
}

// hostileCase is one misbehaving server and what pop2imap must do about it.
type hostileCase struct {
	name string
	pop  *scriptedPOP3 // nil: a well-behaved pop3test server
	// imapFaults, when set, put a faultproxy with these faults in front of
	// the IMAP server.
	imapFaults []faultproxy.Fault
	wantCode   int
	wantText   []string // each must be in the last line pop2imap prints
	maxBytes   int64    // the most the POP3 server may send before pop2imap stops (0: no check)
	args       []string // added to the command line
	wantOutput []string // each must be somewhere in what pop2imap prints
	// after checks the servers once the run is over.
	after func(t *testing.T, pop *pop3test.Server, im *imaptest.Server)
}

// The bounds every hostile run must keep: peak RSS (from /usr/bin/time -v,
// or VmHWM) and peak TMPDIR use (the spool files pop2imap holds open,
// sampled every 2 ms; as root TMPDIR is also a tmpfs of this size).
const (
	maxRSS = 96 << 20
	maxTmp = 64 << 20
)

// hostileFigures collects each case's measurements for the summary.
var hostileFigures sync.Map

// TestHostileServers runs the real binary against servers that misbehave.
// Each run must end by itself within the time limit, with one clear line,
// the documented exit code, bounded memory and bounded TMPDIR use; the
// figures of every case are logged together at the end.
func TestHostileServers(t *testing.T) {
	t.Cleanup(func() {
		var lines []string
		hostileFigures.Range(func(k, v any) bool {
			lines = append(lines, fmt.Sprintf("%-55s %s", k, v))
			return true
		})
		sort.Strings(lines)
		t.Logf("figures (limits: RSS %d MiB, TMPDIR %d MiB):\n%s", maxRSS>>20, maxTmp>>20, strings.Join(lines, "\n"))
	})
	endlessGreeting := &scriptedPOP3{}
	endlessGreeting.greet = func(w io.Writer) error {
		return endlessGreeting.endless(w, "+OK ", func(int) string { return "AAAAAAAAAAAAAAAA" })
	}
	garbageGreeting := &scriptedPOP3{greet: func(w io.Writer) error {
		_, err := io.WriteString(w, "HTTP/1.1 400 Bad Request\r\n")
		return err
	}}
	// A TLS record where the greeting belongs: an implicit-TLS server.
	tlsGreeting := &scriptedPOP3{greet: func(w io.Writer) error {
		_, err := io.WriteString(w, "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1 HTTP/1.1 400 Bad Request\r\n")
		return err
	}}
	hugeErr := &scriptedPOP3{reply: func(verb, _ string, w io.Writer) (bool, error) {
		if verb != "USER" {
			return false, nil
		}
		_, err := io.WriteString(w, "-ERR [SYS/PERM] "+strings.Repeat("no such user, ", 1<<20/14)+"\r\n")
		return true, err
	}}
	endlessUIDL := &scriptedPOP3{}
	endlessUIDL.reply = func(verb, _ string, w io.Writer) (bool, error) {
		if verb != "UIDL" {
			return false, nil
		}
		return true, endlessUIDL.endless(w, "+OK\r\n", func(i int) string { return fmt.Sprintf("%d u%d\r\n", i+1, i+1) })
	}
	endlessRETR := &scriptedPOP3{}
	endlessRETR.reply = func(verb, _ string, w io.Writer) (bool, error) {
		if verb != "RETR" {
			return false, nil
		}
		return true, endlessRETR.endless(w, "+OK\r\n"+string(hostileMessage), func(int) string { return strings.Repeat("x", 78) + "\r\n" })
	}
	endlessRETRLine := &scriptedPOP3{}
	endlessRETRLine.reply = func(verb, _ string, w io.Writer) (bool, error) {
		if verb != "RETR" {
			return false, nil
		}
		return true, endlessRETRLine.endless(w, "+OK\r\n"+string(hostileMessage), func(int) string { return strings.Repeat("y", 1024) })
	}
	cutRETR := &scriptedPOP3{reply: func(verb, _ string, w io.Writer) (bool, error) {
		if verb != "RETR" {
			return false, nil
		}
		io.WriteString(w, "+OK\r\n"+string(hostileMessage[:30]))
		return true, io.EOF // closes the connection
	}}
	noTerminator := &scriptedPOP3{}
	noTerminator.reply = func(verb, _ string, w io.Writer) (bool, error) {
		if verb != "RETR" {
			return false, nil
		}
		io.WriteString(w, "+OK\r\n"+string(hostileMessage))
		return true, noTerminator.hang()
	}
	// STAT claims ten million messages, then UIDL streams without end.
	lyingStat := func(uid func(i int) string) *scriptedPOP3 {
		s := &scriptedPOP3{}
		s.reply = func(verb, _ string, w io.Writer) (bool, error) {
			switch verb {
			case "STAT":
				_, err := io.WriteString(w, "+OK 10000000 0\r\n")
				return true, err
			case "UIDL":
				return true, s.endless(w, "+OK\r\n", func(i int) string { return fmt.Sprintf("%d %s\r\n", i+1, uid(i)) })
			}
			return false, nil
		}
		return s
	}
	longUIDs := lyingStat(func(int) string { return strings.Repeat("u", 8000) })
	endlessShortUIDs := lyingStat(func(i int) string { return fmt.Sprintf("u%d", i+1) })
	// LIST claims size for the one message, and RETR streams without end.
	lyingList := func(size int64) *scriptedPOP3 {
		s := &scriptedPOP3{}
		s.reply = func(verb, _ string, w io.Writer) (bool, error) {
			switch verb {
			case "STAT":
				_, err := fmt.Fprintf(w, "+OK 1 %d\r\n", size)
				return true, err
			case "LIST":
				_, err := fmt.Fprintf(w, "+OK\r\n1 %d\r\n.\r\n", size)
				return true, err
			case "RETR":
				return true, s.endless(w, "+OK\r\n"+string(hostileMessage), func(int) string { return strings.Repeat("x", 78) + "\r\n" })
			}
			return false, nil
		}
		return s
	}
	greetThenHang := &scriptedPOP3{}
	greetThenHang.reply = func(string, string, io.Writer) (bool, error) {
		return true, greetThenHang.hang()
	}

	tests := []hostileCase{
		{name: "endless greeting line", pop: endlessGreeting, wantCode: exitError, wantText: []string{"greeting", "longer than"}, maxBytes: 16 << 20},
		{name: "garbage greeting", pop: garbageGreeting, wantCode: exitError, wantText: []string{"greeting", "malformed"}},
		{name: "TLS record as the greeting", pop: tlsGreeting, wantCode: exitUsage, wantText: []string{"greeting", "--pop3-tls implicit", "port (110)"}},
		{name: "huge -ERR text", pop: hugeErr, wantCode: exitError, wantText: []string{"USER", "longer than"}},
		{name: "endless UIDL listing", pop: endlessUIDL, wantCode: exitError, wantText: []string{"UIDL"}, maxBytes: 32 << 20},
		{name: "STAT claims 10 million, UIDL of 8000-byte unique-ids", pop: longUIDs, wantCode: exitError,
			wantText: []string{"UIDL", "unique-id of 8000 bytes"}, maxBytes: 16 << 20},
		{name: "STAT claims 10 million, endless UIDL", pop: endlessShortUIDs, wantCode: exitError,
			wantText: []string{"UIDL", "takes more than 32 MiB"}, maxBytes: 40 << 20},
		{name: "LIST claims a petabyte, endless RETR", pop: lyingList(1e15), wantCode: exitLeftBehind,
			wantText: []string{"left on the POP3 server"}, wantOutput: []string{"over the largest message copied"}, maxBytes: 1 << 20},
		{name: "LIST under --max-message-size, endless RETR", pop: lyingList(40 << 20), args: []string{"--max-message-size", "48MiB"},
			wantCode: exitError, wantText: []string{"RETR 1", "more than 50331648 bytes"}, maxBytes: 60 << 20},
		{name: "endless RETR body in lines", pop: endlessRETR, wantCode: exitError, wantText: []string{"RETR 1"}, maxBytes: 32 << 20},
		{name: "endless RETR body in one line", pop: endlessRETRLine, wantCode: exitError, wantText: []string{"RETR 1"}, maxBytes: 32 << 20},
		{name: "connection closed mid-RETR", pop: cutRETR, wantCode: exitError, wantText: []string{"RETR 1", "cut off"}},
		{name: "RETR without terminator, then silence", pop: noTerminator, wantCode: exitError, wantText: []string{"RETR 1", "timeout"}},
		{name: "POP3 greeting then hang", pop: greetThenHang, wantCode: exitError, wantText: []string{"pop3", "timeout"}},
		{
			name: "IMAP greeting then hang", imapFaults: faultproxy.HangAfterGreeting(),
			wantCode: exitError, wantText: []string{"imap", "login"},
			after: func(t *testing.T, pop *pop3test.Server, _ *imaptest.Server) {
				if n := len(pop.Messages()); n != 1 {
					t.Errorf("POP3 holds %d messages, want the 1 that was never copied", n)
				}
			},
		},
		{
			// The APPEND is stored, but its tagged reply never comes: the
			// APPEND times out, and the retry must find the stored copy
			// instead of appending a second one.
			name:       "IMAP never sends the tagged reply to APPEND",
			imapFaults: []faultproxy.Fault{{Dir: faultproxy.Downstream, PeerSends: "APPEND", Action: faultproxy.Stall}},
			wantCode:   exitOK,
			after: func(t *testing.T, pop *pop3test.Server, im *imaptest.Server) {
				if got := im.Messages("INBOX"); len(got) != 1 || !bytes.Equal(got[0], hostileMessage) {
					t.Errorf("INBOX holds %d messages, want the one message exactly once", len(got))
				}
				if n := len(pop.Messages()); n != 0 {
					t.Errorf("POP3 holds %d messages, want 0 after --delete", n)
				}
			},
		},
	}
	binary(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runHostile(t, tt)
		})
	}
}

func runHostile(t *testing.T, tt hostileCase) {
	const popPass, imapPass = "hostile-Pop-Secret-1", "hostile-Imap-Secret-2"
	var popAddr string
	servers := testservers.Start(t, testservers.Config{
		POP3:     pop3test.Config{Username: "alice", Password: popPass},
		IMAPUser: "alice", IMAPPassword: imapPass,
	})
	pts, im := servers.POP3, servers.IMAP
	pts.AddMessage("hostile-1", hostileMessage)
	popAddr = pts.Addr()
	if tt.pop != nil {
		popAddr = startScripted(t, tt.pop)
	}
	imapAddr := im.Addr()
	if tt.imapFaults != nil {
		px, err := faultproxy.Listen(imapAddr, tt.imapFaults...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { px.Close() })
		imapAddr = px.Addr()
	}
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o700)
	// As root, TMPDIR is a tmpfs of maxTmp: a spool that grew past it
	// would fail the run, whatever the sampling below saw.
	if os.Geteuid() == 0 {
		if err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", maxTmp), "tmpfs", tmp).Run(); err == nil {
			t.Cleanup(func() { exec.Command("umount", tmp).Run() })
		}
	}
	res := runBinary(t, runOptions{
		args: append([]string{"migrate", "--pop3", popAddr, "--pop3-user", "alice", "--pop3-tls", "none",
			"--imap", imapAddr, "--imap-user", "alice", "--imap-tls", "none", "--delete",
			"--state", filepath.Join(dir, "journal"), "--progress", "never", "--timeout", "2s",
			"--report", filepath.Join(dir, "report.json")}, tt.args...),
		env:       []string{"POP2IMAP_POP3_PASSWORD=" + popPass, "POP2IMAP_IMAP_PASSWORD=" + imapPass, "TMPDIR=" + tmp},
		timeLimit: 150 * time.Second,
		measure:   true,
		tmpDir:    tmp,
	})
	last := lastLine(res.output)
	sent := int64(0)
	if tt.pop != nil {
		sent = tt.pop.sent.Load()
	}
	t.Logf("exit %d after %v, peak RSS %d KiB, peak TMPDIR %d KiB, POP3 server sent %d bytes; last line: %.300s",
		res.code, res.elapsed.Round(100*time.Millisecond), res.peakRSS, res.peakTmp>>10, sent, last)
	hostileFigures.Store(tt.name, fmt.Sprintf("exit %d, peak RSS %.1f MiB, peak TMPDIR %.1f MiB, server sent %.1f MiB",
		res.code, float64(res.peakRSS)/1024, float64(res.peakTmp)/(1<<20), float64(sent)/(1<<20)))
	for _, w := range tt.wantOutput {
		if !strings.Contains(res.output, w) {
			t.Errorf("the output does not mention %q:\n%s", w, tail(res.output, 10))
		}
	}
	if res.code != tt.wantCode {
		t.Errorf("exit code %d, want %d; output:\n%s", res.code, tt.wantCode, tail(res.output, 10))
	}
	for _, w := range tt.wantText {
		if !strings.Contains(strings.ToLower(last), strings.ToLower(w)) {
			t.Errorf("last line does not mention %q: %.500s", w, last)
		}
	}
	if len(last) > 2000 {
		t.Errorf("the error line is %d bytes long: a server's text must not flood the terminal", len(last))
	}
	for _, secret := range []string{popPass, imapPass} {
		if strings.Contains(res.output, secret) {
			t.Errorf("the output contains a password")
		}
	}
	if res.peakRSS > maxRSS>>10 {
		t.Errorf("peak RSS %d KiB, want at most %d KiB: memory must stay bounded whatever the server sends", res.peakRSS, maxRSS>>10)
	}
	if res.peakTmp > maxTmp {
		t.Errorf("peak TMPDIR use %d bytes, want at most %d: the disk must stay bounded whatever the server sends", res.peakTmp, maxTmp)
	}
	if tt.maxBytes > 0 && sent > tt.maxBytes {
		t.Errorf("pop2imap read %d bytes from the server before stopping, want at most %s", sent, strconv.FormatInt(tt.maxBytes, 10))
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("%d spool files left in TMPDIR", len(left))
	}
	if tt.after != nil {
		tt.after(t, pts, im)
	}
}
