package bridge

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/faultloop"
	"github.com/pop2imap/pop2imap/internal/imaptest"
	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/state"
)

// badMessages returns testdata/badmail, the 1 MiB single line, and two
// identical messages under one UIDL, which only a broken server (and
// pop3test) can list.
func badMessages(t *testing.T) []pop3test.Message {
	t.Helper()
	bad, err := faultloop.BadMail("../testdata/badmail")
	if err != nil {
		t.Fatal(err)
	}
	var out []pop3test.Message
	for _, m := range bad {
		out = append(out, pop3test.Message{UIDL: m.Name, Data: m.Data})
	}
	twin := []byte("Subject: twin\r\nMessage-ID: <twin@badmail.example>\r\n\r\nlisted twice under one UIDL\r\n")
	return append(out, pop3test.Message{UIDL: "twin", Data: twin}, pop3test.Message{UIDL: "twin", Data: twin})
}

// TestBadMail copies every bad message byte for byte, or, when the IMAP
// server refuses one, reports it, records it and leaves it on the POP3
// server. Nothing is skipped silently.
func TestBadMail(t *testing.T) {
	tests := []struct {
		name   string
		refuse func(data []byte) bool
	}{
		{"all accepted", func([]byte) bool { return false }},
		{"empty message refused, as Dovecot does", func(d []byte) bool { return len(d) == 0 }},
		{"NUL refused", func(d []byte) bool { return bytes.IndexByte(d, 0) >= 0 }},
		{"1 MiB line refused", func(d []byte) bool { return len(d) > faultloop.LongLineSize }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := badMessages(t)
			e := newTestEnv(t, msgs, pop3test.Config{})
			e.imap.SetAppendFault(func(_ int, data []byte) imaptest.AppendFault {
				if tt.refuse(data) {
					return imaptest.AppendRefuse
				}
				return imaptest.AppendOK
			})
			var mu sync.Mutex
			refused := map[string]bool{}
			pop, im := e.endpoints()
			m := &Migrator{Config: Config{Folder: folder, Delete: true}, POP3: pop, IMAP: im, Stats: &Stats{}}
			m.OnEvent = func(ev Event) {
				if ev.Kind == EventRefused {
					mu.Lock()
					refused[ev.UIDL] = true
					mu.Unlock()
				}
			}
			j := openJournal(t, e.journal)
			m.Journal = j
			err := m.Run(t.Context())
			j.Close()
			if err != nil {
				t.Fatal(err)
			}
			var want [][]byte
			wantLeft := map[string]bool{}
			for _, msg := range msgs {
				if tt.refuse(msg.Data) {
					wantLeft[msg.UIDL] = true
					continue
				}
				want = append(want, msg.Data)
			}
			e.assertExactlyOnce(want)
			if got := m.Stats.LeftBehind.Load(); got != int64(len(wantLeft)) {
				t.Errorf("LeftBehind = %d, want %d", got, len(wantLeft))
			}
			if fmt.Sprint(refused) != fmt.Sprint(wantLeft) {
				t.Errorf("refused events for %v, want %v", refused, wantLeft)
			}
			left := map[string]bool{}
			for _, msg := range e.pop.Messages() {
				left[msg.UIDL] = true
			}
			if fmt.Sprint(left) != fmt.Sprint(wantLeft) {
				t.Errorf("POP3 holds %v, want exactly the refused %v", left, wantLeft)
			}
		})
	}
}

// TestBadMailLostReplies loses the reply to the APPEND of each bad message
// in turn (stored, but the client cannot know), then reruns until done. The
// search for the stored copy must recognise every kind of bad message, so
// that none is stored twice.
func TestBadMailLostReplies(t *testing.T) {
	msgs := badMessages(t)
	for i, msg := range msgs {
		t.Run(fmt.Sprintf("%02d %s", i+1, msg.UIDL), func(t *testing.T) {
			e := newTestEnv(t, msgs, pop3test.Config{})
			lost := false
			var mu sync.Mutex
			e.imap.SetAppendFault(func(_ int, data []byte) imaptest.AppendFault {
				mu.Lock()
				defer mu.Unlock()
				if !lost && bytes.Equal(data, msg.Data) {
					lost = true
					return imaptest.AppendLoseReply
				}
				return imaptest.AppendOK
			})
			e.runUntilDone(Config{Delete: true, Retries: -1, IMAPConns: 1, Window: 2})
			if extra, missing := duplicated(e.stored(), e.source); len(extra)+len(missing) > 0 {
				t.Errorf("stored too often: %q; missing or altered: %q", extra, missing)
			}
			e.assertExactlyOnce(e.source)
			if n := len(e.pop.Messages()); n != 0 {
				t.Errorf("POP3 still holds %d messages", n)
			}
		})
	}
}

func openJournal(t *testing.T, path string) *state.Journal {
	t.Helper()
	j, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestLooseMatchClaimsOnlyItsOwnCopy: two messages without Message-ID or
// Date that differ only in their line endings have the same loose hash. If
// a run stops after storing the second but before sending the first, the
// next run must not take the second's copy for the first: that would mark
// the first copied (and DELE it) although it was never stored, and store
// the second twice.
func TestLooseMatchClaimsOnlyItsOwnCopy(t *testing.T) {
	first := []byte("Subject: line endings\r\n\r\nsame text\r\nsecond line\r\n")
	second := []byte("Subject: line endings\n\nsame text\nsecond line\r\n")
	e := newTestEnv(t, []pop3test.Message{{UIDL: "crlf", Data: first}, {UIDL: "bare-lf", Data: second}}, pop3test.Config{})
	secondStored := make(chan struct{})
	var once sync.Once
	e.imap.SetAppendFault(func(_ int, data []byte) imaptest.AppendFault {
		switch {
		case bytes.Equal(data, second):
			once.Do(func() { close(secondStored) })
			return imaptest.AppendLoseReply // stored; the client cannot know
		case bytes.Equal(data, first):
			select { // drop the first only once the second is stored
			case <-secondStored:
			case <-time.After(5 * time.Second):
			}
			return imaptest.AppendDropBefore // not stored; the client cannot know
		}
		return imaptest.AppendOK
	})
	if _, err := e.run(Config{Delete: true, Retries: -1, IMAPConns: 2, Window: 2}); err == nil {
		t.Fatal("the first run should have failed")
	}
	e.imap.SetAppendFault(nil)
	e.runUntilDone(Config{Delete: true})
	if extra, missing := duplicated(e.stored(), e.source); len(extra)+len(missing) > 0 {
		t.Errorf("stored too often: %q; missing: %q", extra, missing)
	}
	e.assertExactlyOnce(e.source)
	if n := len(e.pop.Messages()); n != 0 {
		t.Errorf("POP3 still holds %d messages", n)
	}
}
