package bridge

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/pop2imap/pop2imap/internal/imapappend"
	"github.com/pop2imap/pop2imap/internal/imaptest"
	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/internal/testnet"
)

// TestMaxMessageSize: a message larger than MaxMessageSize, or than the IMAP
// server's APPENDLIMIT when that is smaller, is never retrieved: it is
// reported with a *TooLargeError and left on the POP3 server, also with
// Delete. The others are copied.
func TestMaxMessageSize(t *testing.T) {
	msg := func(uidl string, n int) pop3test.Message {
		head := "Subject: " + uidl + "\r\n\r\n"
		return pop3test.Message{UIDL: uidl, Data: []byte(head + strings.Repeat("x", n-len(head)-2) + "\r\n")}
	}
	msgs := []pop3test.Message{msg("small", 500), msg("big", 1800), msg("huge", 3000)}
	tests := []struct {
		name        string
		max         int64
		appendLimit string
		wantLeft    []string
		wantLimit   int64
		isAppend    bool
	}{
		{"MaxMessageSize", 2000, "", []string{"huge"}, 2000, false},
		{"APPENDLIMIT above MaxMessageSize", 1000, "APPENDLIMIT=1500", []string{"big", "huge"}, 1000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, msgs, pop3test.Config{})
			if tt.appendLimit != "" {
				im, err := imaptest.NewServer(imapUser, imapPass, imaptest.WithCap(imap.Cap(tt.appendLimit)))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { im.Close() })
				e.imap = im
			}
			pop, im := e.endpoints()
			j := openJournal(t, e.journal)
			defer j.Close()
			var mu sync.Mutex
			left := map[string]*TooLargeError{}
			m := &Migrator{Config: Config{Folder: folder, Delete: true, MaxMessageSize: tt.max}, POP3: pop, IMAP: im, Journal: j, Stats: &Stats{}}
			m.OnEvent = func(ev Event) {
				var tl *TooLargeError
				if ev.Kind == EventRefused && errors.As(ev.Err, &tl) {
					mu.Lock()
					left[ev.UIDL] = tl
					mu.Unlock()
				}
			}
			if err := m.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := m.Stats.LeftBehind.Load(); got != int64(len(tt.wantLeft)) {
				t.Errorf("LeftBehind = %d, want %d", got, len(tt.wantLeft))
			}
			var want [][]byte
			for _, msg := range msgs {
				tl, isLeft := left[msg.UIDL]
				wantLeft := strings.Contains(strings.Join(tt.wantLeft, " "), msg.UIDL)
				switch {
				case wantLeft && !isLeft:
					t.Errorf("%s: no *TooLargeError event", msg.UIDL)
				case !wantLeft && isLeft:
					t.Errorf("%s: left behind: %v", msg.UIDL, tl)
				case isLeft && (tl.Limit != tt.wantLimit || tl.AppendLimit != tt.isAppend || tl.Size != int64(len(msg.Data))):
					t.Errorf("%s: %+v; want limit %d, APPENDLIMIT %v", msg.UIDL, *tl, tt.wantLimit, tt.isAppend)
				case !wantLeft:
					want = append(want, msg.Data)
				}
			}
			e.assertExactlyOnce(want)
			var onPOP3 []string
			for _, msg := range e.pop.Messages() {
				onPOP3 = append(onPOP3, msg.UIDL)
			}
			if fmt.Sprint(onPOP3) != fmt.Sprint(tt.wantLeft) {
				t.Errorf("POP3 holds %v, want %v", onPOP3, tt.wantLeft)
			}
			if n := len(e.commands("RETR")); n != len(msgs)-len(tt.wantLeft) {
				t.Errorf("%d RETRs; the messages over the limit must not be retrieved", n)
			}
		})
	}
}

// lyingPOP3 serves one message whose LIST size is listSize and whose RETR
// body never ends. It counts the body bytes it manages to send.
func lyingPOP3(t *testing.T, listSize int64) (addr string, sent *atomic.Int64, retrs *atomic.Int32) {
	t.Helper()
	sent, retrs = &atomic.Int64{}, &atomic.Int32{}
	addr = testnet.Serve(t, func(c net.Conn) {
		io.WriteString(c, "+OK lying\r\n")
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			verb, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			switch strings.ToUpper(verb) {
			case "CAPA":
				io.WriteString(c, "+OK\r\nUSER\r\nUIDL\r\n.\r\n")
			case "STAT":
				fmt.Fprintf(c, "+OK 1 %d\r\n", listSize)
			case "UIDL":
				io.WriteString(c, "+OK\r\n1 lying-1\r\n.\r\n")
			case "LIST":
				fmt.Fprintf(c, "+OK\r\n1 %d\r\n.\r\n", listSize)
			case "RETR":
				retrs.Add(1)
				io.WriteString(c, "+OK\r\nSubject: endless\r\n\r\n")
				chunk := bytes.Repeat([]byte(strings.Repeat("z", 78)+"\r\n"), 800)
				for {
					n, err := c.Write(chunk)
					sent.Add(int64(n))
					if err != nil {
						return
					}
				}
			case "QUIT":
				io.WriteString(c, "+OK\r\n")
				return
			default:
				io.WriteString(c, "+OK\r\n")
			}
		}
	})
	return addr, sent, retrs
}

// TestLyingListBoundedByMaxSize: whatever LIST claims, the spool stops at
// MaxMessageSize. A LIST of 10^15 bytes leaves the message behind without
// a RETR; a LIST under the limit followed by an endless body ends the run
// with an *OversizeError once the limit is reached, not at twice the LIST
// size.
func TestLyingListBoundedByMaxSize(t *testing.T) {
	const maxSize = 700 << 10
	t.Run("LIST of a petabyte", func(t *testing.T) {
		addr, _, retrs := lyingPOP3(t, 1e15)
		e := newTestEnv(t, nil, pop3test.Config{})
		pop, im := e.endpoints()
		pop.Addr = addr
		j := openJournal(t, e.journal)
		defer j.Close()
		var tl *TooLargeError
		m := &Migrator{Config: Config{Folder: folder, Delete: true, MaxMessageSize: maxSize, Retries: -1}, POP3: pop, IMAP: im, Journal: j, Stats: &Stats{}}
		m.OnEvent = func(ev Event) { errors.As(ev.Err, &tl) }
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if m.Stats.LeftBehind.Load() != 1 || tl == nil || tl.Size != 1e15 || tl.Limit != maxSize {
			t.Errorf("LeftBehind %d, event %v; want the message left behind as too large", m.Stats.LeftBehind.Load(), tl)
		}
		if retrs.Load() != 0 {
			t.Errorf("%d RETRs for a message over the limit", retrs.Load())
		}
	})
	t.Run("endless body under a small LIST", func(t *testing.T) {
		addr, sent, _ := lyingPOP3(t, 600<<10)
		e := newTestEnv(t, nil, pop3test.Config{})
		pop, im := e.endpoints()
		pop.Addr = addr
		j := openJournal(t, e.journal)
		defer j.Close()
		m := &Migrator{Config: Config{Folder: folder, Delete: true, MaxMessageSize: maxSize, Retries: -1, TempDir: t.TempDir()},
			POP3: pop, IMAP: im, Journal: j, Stats: &Stats{}}
		err := m.Run(context.Background())
		var oerr *OversizeError
		if !errors.As(err, &oerr) || oerr.Limit != maxSize {
			t.Fatalf("got %v; want an *OversizeError at the limit of %d bytes", err, maxSize)
		}
		time.Sleep(10 * time.Millisecond)
		t.Logf("the server sent %d bytes", sent.Load())
	})
}

// TestSizeLimit: the limit is the IMAP server's APPENDLIMIT when it gives
// one below MaxMessageSize, else MaxMessageSize.
func TestSizeLimit(t *testing.T) {
	for _, tc := range []struct {
		caps     imap.CapSet
		max      int64
		want     int64
		isAppend bool
	}{
		{imap.CapSet{}, 0, DefaultMaxMessageSize, false},
		{imap.CapSet{"APPENDLIMIT": {}}, 0, DefaultMaxMessageSize, false},
		{imap.CapSet{"APPENDLIMIT=1500": {}}, 2000, 1500, true},
		{imap.CapSet{"appendlimit=1500": {}}, 2000, 1500, true},
		{imap.CapSet{"APPENDLIMIT=1500": {}}, 1000, 1000, false},
		{imap.CapSet{"APPENDLIMIT=35882577": {}}, 0, 35882577, true},
	} {
		cfg := (&Config{MaxMessageSize: tc.max}).withDefaults()
		got, isAppend := cfg.sizeLimit(imapappend.AppendLimit(tc.caps))
		if got != tc.want || isAppend != tc.isAppend {
			t.Errorf("caps %v, MaxMessageSize %d: %d, %v; want %d, %v", tc.caps, tc.max, got, isAppend, tc.want, tc.isAppend)
		}
	}
}
