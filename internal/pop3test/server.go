// Package pop3test runs an in-process POP3 server for tests and for the
// "pop2imap demo" command.
//
// The server listens on 127.0.0.1 on a port the kernel picks, serves one
// maildrop owned by one user, and speaks enough of RFC 1939, RFC 2449
// (CAPA and response codes), RFC 2595 (STLS) and RFC 5034 (AUTH PLAIN) to
// exercise a real client: USER/PASS, APOP, AUTH PLAIN, STLS, CAPA, STAT,
// LIST, UIDL, RETR, TOP, DELE, RSET, NOOP and QUIT, with pipelining.
//
// It behaves like a careful production server where that matters to a
// migration tool: a session sees a snapshot of the maildrop taken at login,
// DELE takes effect only when QUIT moves the session into the UPDATE state
// (a dropped or cut connection deletes nothing), and only one session at a
// time may hold the maildrop (the others get "-ERR [IN-USE]").
//
// Faults can be injected per command (see Fault) to make the server refuse,
// stall, cut a reply in the middle, or call back into the test at the exact
// moment a command arrives. Log records every command line the server
// received, with secrets redacted, so a test can assert what a client sent
// and in which order.
//
// A typical test:
//
//	srv, err := pop3test.NewServer(pop3test.Config{Username: "alice", Password: "pw"})
//	if err != nil {
//		t.Fatal(err)
//	}
//	defer srv.Close()
//	srv.AddMessage("uid-1", []byte("Subject: hi\r\n\r\nbody\r\n"))
//	srv.SetFault(pop3test.Fault{Command: "RETR", Arg: "1", CutAfter: 20})
//	// ... run the client against srv.Addr(), then inspect
//	// srv.Messages() and srv.Log().
package pop3test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Message is one message in the maildrop.
type Message struct {
	// UIDL is the unique id the server reports for the message.
	UIDL string
	// Data is the exact bytes of the message. The server dot-stuffs them on
	// the wire and reports len(Data) as the size in LIST and STAT. See
	// WireBody for how the end of Data is framed and why test messages
	// should end in CRLF.
	Data []byte
}

// Config describes the account the server accepts and the capabilities it
// offers.
type Config struct {
	// Username and Password are the only credentials the server accepts,
	// whichever login method the client uses.
	Username, Password string

	// NoPipelining withholds the PIPELINING capability. The server still
	// answers commands that arrive together, in order, as a server that
	// does not advertise pipelining may.
	NoPipelining bool
	// NoUIDL withholds the UIDL capability and refuses the UIDL command.
	NoUIDL bool
	// NoTop withholds the TOP capability and refuses the TOP command.
	NoTop bool

	// TLSConfig, when set, makes the server offer STLS and use this
	// configuration for the upgraded connection.
	TLSConfig *tls.Config

	// APOPSecret, when set, makes the greeting carry an APOP timestamp and
	// the APOP command accept the MD5 digest of that timestamp followed by
	// this secret.
	APOPSecret string

	// LoginDelay, when set, is announced as "LOGIN-DELAY <LoginDelay>" in
	// CAPA after login (RFC 2449), e.g. "900".
	LoginDelay string
}

// Fault makes the server misbehave when a command matches it.
//
// A command matches when its verb equals Command (case-insensitive) and,
// when Arg is not empty, its arguments equal Arg exactly (arguments are
// compared as the client sent them, with runs of spaces collapsed to one;
// "TOP 3 0" has Arg "3 0"). Each fault counts its own matches over the
// server's lifetime, across all sessions; Nth selects which of them fire.
//
// When a fault fires, its effects happen in this order: Hook is called,
// the server sleeps for Stall, then it either refuses the command (ErrCode
// or ErrText set) or executes it, and finally it writes the reply, cut
// after CutAfter bytes when CutAfter is positive.
//
// When several faults fire for one command their effects combine: every
// Hook is called in the order the faults were added, the Stalls add up,
// the first fault that refuses chooses the error reply, and the smallest
// positive CutAfter applies.
//
// A Fault with an empty Command matches nothing, so SetFault(Fault{})
// clears all faults.
type Fault struct {
	// Command is the verb to match: "RETR", "DELE", "QUIT", "UIDL", ...
	// It is compared case-insensitively.
	Command string
	// Arg, when not empty, must equal the command's arguments exactly.
	Arg string
	// Nth is 0 to fire on every match, or n to fire only on the n-th
	// matching command (1-based) since the fault was added.
	Nth int

	// ErrCode and ErrText, when either is set, make the server reply
	// "-ERR [ErrCode] ErrText" instead of executing the command. The code
	// and its brackets are omitted when ErrCode is empty, and ErrText
	// defaults to "injected fault".
	ErrCode string
	ErrText string

	// CutAfter, when positive, lets the command execute but closes the
	// connection after this many bytes of its reply have been written, so
	// a RETR can be cut in the middle of the body. When the reply is
	// shorter, all of it is written and then the connection is closed.
	// The session then ends like a dropped connection: no DELE takes
	// effect. The one exception is QUIT, which executes (and so commits
	// its DELEs) before the cut reply is written: that is the case of a
	// server that updated the maildrop but whose "+OK" never arrived.
	CutAfter int

	// Drop, when set, closes the connection as soon as the command
	// arrives, without executing or answering it, as if the server had
	// crashed. No DELE takes effect, even for QUIT.
	Drop bool

	// Stall makes the server sleep this long before replying, to exercise
	// a client's deadlines. Close cuts the sleep short.
	Stall time.Duration

	// Hook is called on the session's goroutine when the fault fires,
	// before the command executes and before any reply is written. Tests
	// use it to simulate a crash of the client at a precise point, for
	// example by cancelling a context. Hook must not call Close (Close
	// waits for the session that is running the hook), though it may start
	// a goroutine that does.
	Hook func()
}

// MaxLineLength is the longest command line, CRLF included, that the server
// accepts. A longer line gets "-ERR line too long" and the connection is
// closed.
const MaxLineLength = 1024

// Server is a running POP3 server. All of its methods are safe for
// concurrent use.
type Server struct {
	cfg  Config
	ln   net.Listener
	done chan struct{} // closed by Close, to abort stalls and the accept loop
	wg   sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex
	maildrop []*message
	log      []string
	faults   []*faultState
	holder   *session // the session holding the maildrop lock, or nil
	conns    map[net.Conn]struct{}
	closed   bool
}

// message is a maildrop entry. Sessions refer to entries by pointer, so a
// committed DELE removes exactly the message the session saw even when
// other messages were added since its login.
type message struct {
	uidl string
	data []byte
	// listSize, when not negative, is the size LIST and STAT report
	// instead of len(data): a server that lies about sizes.
	listSize int
}

func (m *message) size() int {
	if m.listSize >= 0 {
		return m.listSize
	}
	return len(m.data)
}

// faultState is a Fault and the number of commands it has matched so far.
type faultState struct {
	Fault
	matched int
}

// timestampSeq makes APOP timestamps unique within the process.
var timestampSeq atomic.Uint64

// NewServer listens on 127.0.0.1:0 and serves POP3 in the background until
// Close is called. The maildrop starts empty; fill it with AddMessage.
func NewServer(cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pop3test: listen: %w", err)
	}
	s := &Server{
		cfg:   cfg,
		ln:    ln,
		done:  make(chan struct{}),
		conns: make(map[net.Conn]struct{}),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr returns the address the server listens on, as "127.0.0.1:port".
func (s *Server) Addr() string {
	return s.ln.Addr().String()
}

// AddMessage appends a message to the maildrop. The server keeps a copy of
// data. Sessions already logged in do not see it, because a session works on
// the snapshot of the maildrop taken at its login.
//
// For a byte-exact round trip through a correct client, data should be empty
// or end in CRLF; see WireBody for what happens otherwise.
func (s *Server) AddMessage(uidl string, data []byte) {
	m := &message{uidl: uidl, data: append([]byte(nil), data...), listSize: -1}
	s.mu.Lock()
	s.maildrop = append(s.maildrop, m)
	s.mu.Unlock()
}

// SetListSize makes LIST and STAT report size for every message with the
// given UIDL, whatever its real length, as a misbehaving server might.
func (s *Server) SetListSize(uidl string, size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.maildrop {
		if m.uidl == uidl {
			m.listSize = size
		}
	}
}

// Messages returns a copy of the maildrop as it is now: the messages added,
// minus those whose DELE was committed by a QUIT.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs := make([]Message, len(s.maildrop))
	for i, m := range s.maildrop {
		msgs[i] = Message{UIDL: m.uidl, Data: append([]byte(nil), m.data...)}
	}
	return msgs
}

// Log returns every command line the server has received, across all
// sessions, in the order it received them. Each entry is the verb in upper
// case followed by its arguments ("DELE 3", "TOP 1 0"). Secrets are
// replaced by "<redacted>": the argument of PASS, the digest of APOP, the
// initial response of AUTH, and every SASL response line a client sends
// after a "+ " challenge (logged as just "<redacted>"). A line longer than
// MaxLineLength is not logged.
func (s *Server) Log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// SetFault replaces all faults with f. SetFault(Fault{}) clears them.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	if f.Command != "" {
		s.faults = append(s.faults, &faultState{Fault: f})
	}
}

// AddFault adds f to the faults already set.
func (s *Server) AddFault(f Fault) {
	if f.Command == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultState{Fault: f})
}

// Close stops the listener, closes every connection, and waits for all of
// the server's goroutines to finish. Sessions that are cut off this way end
// like dropped connections: their DELEs do not take effect. Calling Close
// again returns the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.closeErr = s.ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s.closeErr
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient failure such as running out of file
			// descriptors; back off briefly rather than spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !s.track(conn) {
			conn.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			newSession(s, conn).run()
		}()
	}
}

// track registers conn so that Close can close it. It reports false when
// the server is already closed.
func (s *Server) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[conn] = struct{}{}
	return true
}

func (s *Server) untrack(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, conn)
}

func (s *Server) appendLog(entry string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, entry)
}

// newTimestamp returns a fresh APOP timestamp, angle brackets included.
func newTimestamp() string {
	return fmt.Sprintf("<%d.%d.%d@pop3test>", os.Getpid(), timestampSeq.Add(1), time.Now().UnixNano())
}

// lockMaildrop gives the maildrop to ss and returns the snapshot ss works
// on. It reports false when another session holds the maildrop.
func (s *Server) lockMaildrop(ss *session) ([]*message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder != nil && s.holder != ss {
		return nil, false
	}
	s.holder = ss
	return append([]*message(nil), s.maildrop...), true
}

// unlockMaildrop releases the maildrop if ss holds it.
func (s *Server) unlockMaildrop(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder == ss {
		s.holder = nil
	}
}

// commit removes the given messages from the maildrop; it is the UPDATE
// state of RFC 1939.
func (s *Server) commit(deleted []*message) {
	if len(deleted) == 0 {
		return
	}
	gone := make(map[*message]bool, len(deleted))
	for _, m := range deleted {
		gone[m] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.maildrop[:0:0]
	for _, m := range s.maildrop {
		if !gone[m] {
			kept = append(kept, m)
		}
	}
	s.maildrop = kept
}

// effect is what the faults that fired for one command ask for.
type effect struct {
	hooks    []func()
	stall    time.Duration
	refuse   bool
	errCode  string
	errText  string
	cutAfter int
	drop     bool
}

// fire counts the command against every fault it matches and returns the
// combined effect of those that fire.
func (s *Server) fire(verb, args string) effect {
	s.mu.Lock()
	defer s.mu.Unlock()
	var eff effect
	for _, f := range s.faults {
		if !strings.EqualFold(f.Command, verb) || (f.Arg != "" && f.Arg != args) {
			continue
		}
		f.matched++
		if f.Nth != 0 && f.Nth != f.matched {
			continue
		}
		if f.Hook != nil {
			eff.hooks = append(eff.hooks, f.Hook)
		}
		eff.stall += f.Stall
		if !eff.refuse && (f.ErrCode != "" || f.ErrText != "") {
			eff.refuse = true
			eff.errCode = f.ErrCode
			eff.errText = f.ErrText
			if eff.errText == "" {
				eff.errText = "injected fault"
			}
		}
		if f.CutAfter > 0 && (eff.cutAfter == 0 || f.CutAfter < eff.cutAfter) {
			eff.cutAfter = f.CutAfter
		}
		eff.drop = eff.drop || f.Drop
	}
	return eff
}
