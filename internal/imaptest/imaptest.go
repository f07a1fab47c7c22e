// Package imaptest runs an in-process IMAP server for tests and the demo. It
// wraps go-imap's imapmemserver and adds a hook on APPEND, so tests can see
// the exact bytes stored and inject the failures the pipeline must survive:
// a refusal, and a reply lost after the message was stored.
package imaptest

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"sort"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// AppendFault says what the server does with one APPEND instead of the usual.
type AppendFault int

const (
	// AppendOK stores the message and answers OK.
	AppendOK AppendFault = iota
	// AppendRefuse answers NO [TOOBIG] without storing.
	AppendRefuse
	// AppendLoseReply stores the message and then drops the connection
	// before the tagged reply: the client cannot know the outcome.
	AppendLoseReply
	// AppendDropBefore drops the connection without storing.
	AppendDropBefore
	// AppendOverQuota answers NO [OVERQUOTA] without storing.
	AppendOverQuota
)

// Server is an in-process IMAP server on 127.0.0.1.
type Server struct {
	mem  *imapmemserver.Server
	srv  *imapserver.Server
	ln   net.Listener
	user *imapmemserver.User

	mu      sync.Mutex
	appends int
	stored  map[string][]storedMessage
	rewrite func([]byte) []byte
	fault   func(n int, data []byte) AppendFault
}

// Option changes what NewServer's server announces.
type Option func(caps imap.CapSet)

// WithoutLiteralPlus makes the server not announce LITERAL+ (RFC 7888), so
// that clients must wait for "+" before every literal.
func WithoutLiteralPlus() Option {
	return func(caps imap.CapSet) { delete(caps, imap.CapLiteralPlus) }
}

// WithCap makes the server announce one more capability, such as
// APPENDLIMIT=1000.
func WithCap(c imap.Cap) Option {
	return func(caps imap.CapSet) { caps[c] = struct{}{} }
}

// NewServer starts a server with one user. It announces LITERAL+ unless
// told otherwise. It allows plaintext logins, which is safe only because it
// listens on loopback.
func NewServer(username, password string, opts ...Option) (*Server, error) {
	caps := imap.CapSet{
		imap.CapIMAP4rev1:   {},
		imap.CapUIDPlus:     {},
		imap.CapLiteralPlus: {},
	}
	for _, o := range opts {
		o(caps)
	}
	s := &Server{mem: imapmemserver.New(), user: imapmemserver.NewUser(username, password)}
	if err := s.user.Create("INBOX", nil); err != nil {
		return nil, err
	}
	s.mem.AddUser(s.user)
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(conn *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &session{Session: s.mem.NewSession(), srv: s, conn: conn}, nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.ln = ln
	go s.srv.Serve(ln)
	return s, nil
}

// Addr returns the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// SetAppendFault installs f, which is asked for every APPEND with its
// 1-based count and the message bytes. nil restores normal behaviour.
func (s *Server) SetAppendFault(f func(n int, data []byte) AppendFault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// SetStoreRewrite makes the server store f(message) instead of the message
// it was sent, as real servers do in small ways (see DovecotLineEndings).
// nil stores messages unchanged.
func (s *Server) SetStoreRewrite(f func([]byte) []byte) {
	s.mu.Lock()
	s.rewrite = f
	s.mu.Unlock()
}

// DovecotLineEndings rewrites a message the way Dovecot 2.3 stores it: every
// bare LF becomes CRLF. (internal/dovecottest records the rest of what
// Dovecot changes.)
func DovecotLineEndings(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/32)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// Appends returns how many APPEND commands the server has received.
func (s *Server) Appends() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appends
}

// Messages returns the exact bytes of every message APPENDed to folder, in
// UID order, as the server stored them (see SetStoreRewrite). It reads what the APPEND hook
// captured rather than FETCH, because imapmemserver rebuilds a message from
// its parsed form when serving it (bare LF becomes CRLF, an empty message
// gains a CRLF), and the tests must see what pop2imap actually sent.
func (s *Server) Messages(folder string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored := append([]storedMessage(nil), s.stored[folder]...)
	sort.Slice(stored, func(i, j int) bool { return stored[i].uid < stored[j].uid })
	out := make([][]byte, len(stored))
	for i, m := range stored {
		out[i] = m.data
	}
	return out
}

type storedMessage struct {
	uid  imap.UID
	data []byte
}

type session struct {
	imapserver.Session
	srv      *Server
	conn     *imapserver.Conn
	selected string
}

func (sess *session) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	data, err := sess.Session.Select(mailbox, options)
	if err == nil {
		sess.selected = mailbox
	}
	return data, err
}

func (sess *session) Unselect() error {
	sess.selected = ""
	return sess.Session.Unselect()
}

// Fetch serves UID FETCH of a whole message (BODY[] or BODY.PEEK[]) from the
// exact bytes stored, as a real server does. imapmemserver rebuilds a message
// from its parsed form, which changes bytes (a message without a header comes
// back empty) and would make the pipeline's search for a stored copy see
// things no real server shows. Every other FETCH goes to imapmemserver.
func (sess *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	uids, isUID := numSet.(imap.UIDSet)
	if !isUID || len(options.BodySection) != 1 || !wholeMessage(options.BodySection[0]) ||
		options.Envelope || options.BodyStructure != nil || options.Flags || options.RFC822Size || options.InternalDate {
		return sess.Session.Fetch(w, numSet, options)
	}
	s := sess.srv
	s.mu.Lock()
	stored := append([]storedMessage(nil), s.stored[sess.selected]...)
	s.mu.Unlock()
	// Every message of a test folder arrives through Append, so UID order
	// is sequence order.
	sort.Slice(stored, func(i, j int) bool { return stored[i].uid < stored[j].uid })
	for i, m := range stored {
		if !uids.Contains(m.uid) {
			continue
		}
		rw := w.CreateMessage(uint32(i + 1))
		rw.WriteUID(m.uid)
		bw := rw.WriteBodySection(options.BodySection[0], int64(len(m.data)))
		bw.Write(m.data)
		if err := bw.Close(); err != nil {
			return err
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

func wholeMessage(s *imap.FetchItemBodySection) bool {
	return s.Specifier == imap.PartSpecifierNone && len(s.Part) == 0 && len(s.HeaderFields) == 0 &&
		len(s.HeaderFieldsNot) == 0 && s.Partial == nil
}

func (sess *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	s := sess.srv
	s.mu.Lock()
	s.appends++
	n, f, rewrite := s.appends, s.fault, s.rewrite
	s.mu.Unlock()
	fault := AppendOK
	if f != nil {
		fault = f(n, data)
	}
	switch fault {
	case AppendRefuse:
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "message too big"}
	case AppendOverQuota:
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "over quota"}
	case AppendDropBefore:
		sess.conn.NetConn().Close()
		return nil, errors.New("imaptest: connection dropped")
	}
	if rewrite != nil {
		data = rewrite(data)
	}
	res, err := sess.Session.Append(mailbox, &literal{bytes.NewReader(data), int64(len(data))}, options)
	if err == nil {
		s.mu.Lock()
		if s.stored == nil {
			s.stored = map[string][]storedMessage{}
		}
		s.stored[mailbox] = append(s.stored[mailbox], storedMessage{res.UID, data})
		s.mu.Unlock()
	}
	if fault == AppendLoseReply && err == nil {
		sess.conn.NetConn().Close()
	}
	return res, err
}

type literal struct {
	*bytes.Reader
	size int64
}

func (l *literal) Size() int64 { return l.size }
