package bridge

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pop2imap/pop2imap/internal/imaptest"
	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/state"
)

// verifiable drops the empty sample: imapmemserver serves it back as a
// CRLF, which verify rightly calls different.
func verifiable(t *testing.T) []pop3test.Message {
	var out []pop3test.Message
	for _, m := range sampleMessages(t) {
		if len(m.Data) > 0 {
			out = append(out, m)
		}
	}
	return out
}

// verify runs a Verifier over the test environment and returns its verdicts
// by UIDL.
func (e *testEnv) verify(quick, withJournal bool) (map[string]VerifyResult, *VerifyStats, error) {
	e.t.Helper()
	var j *state.Journal
	if withJournal {
		var err error
		if j, err = state.Open(e.journal); err != nil {
			e.t.Fatal(err)
		}
		defer j.Close()
	}
	pop, im := e.endpoints()
	got := map[string]VerifyResult{}
	var order []string
	v := &Verifier{POP3: pop, IMAP: im, Folder: folder, Journal: j, Quick: quick, Window: 3, Timeout: 5 * time.Second,
		OnResult: func(r VerifyResult) {
			key := r.UIDL
			if _, dup := got[key]; dup {
				key = fmt.Sprintf("%s#%d", r.UIDL, r.Number)
			}
			got[key] = r
			order = append(order, key)
		}}
	stats, err := v.Run(context.Background())
	for i := 1; i < len(order); i++ {
		if got[order[i]].Number < got[order[i-1]].Number {
			e.t.Errorf("verdicts out of message order: %v", order)
		}
	}
	return got, stats, err
}

func (e *testEnv) imapClient() *imapclient.Client {
	e.t.Helper()
	_, ep := e.endpoints()
	c, err := DialIMAP(context.Background(), ep)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TestVerifyAfterMigration: after a migration every message is '=', by the
// journal or without it, byte for byte or quick; and verify changes
// nothing on either server.
func TestVerifyAfterMigration(t *testing.T) {
	e := newTestEnv(t, verifiable(t), pop3test.Config{})
	e.imap.SetStoreRewrite(imaptest.DovecotLineEndings)
	if _, err := e.run(Config{}); err != nil {
		t.Fatal(err)
	}
	appends := e.imap.Appends()
	for _, tt := range []struct {
		name           string
		quick, journal bool
		wantBy         string // expected for a message with a Message-ID
	}{
		{"journal", false, true, "journal"},
		{"no journal", false, false, "message-id"},
		{"quick", true, true, "journal"},
		{"quick without journal", true, false, "message-id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logBefore := len(e.pop.Log())
			got, stats, err := e.verify(tt.quick, tt.journal)
			if err != nil {
				t.Fatal(err)
			}
			// Without a journal, --quick only compares sizes, so it calls the
			// copy the server rewrote different: the documented price of
			// not reading the messages.
			rewritten := tt.quick && !tt.journal
			if (!stats.OK() && !rewritten) || stats.Checked != len(e.source) {
				t.Errorf("stats %+v, want all %d identical", *stats, len(e.source))
			}
			for uidl, r := range got {
				want := VerifySame
				if rewritten && uidl == "u006" {
					want = VerifyDiffer
				}
				if r.Mark != want {
					t.Errorf("%s: %c, want %c (%+v)", uidl, r.Mark, want, r)
				}
			}
			if r := got["u001"]; r.By != tt.wantBy {
				t.Errorf("u001 found by %q, want %q", r.By, tt.wantBy)
			}
			if !tt.quick {
				// The server stores bare LF as CRLF: equal once normalised.
				if r := got["u006"]; !r.Normalised {
					t.Errorf("bare-LF message: %+v, want a normalised match", r)
				}
			}
			for _, l := range e.pop.Log()[logBefore:] {
				if strings.HasPrefix(l, "DELE") || strings.HasPrefix(l, "QUIT") || (tt.quick && strings.HasPrefix(l, "RETR")) {
					t.Errorf("verify sent %q", l)
				}
			}
		})
	}
	if e.imap.Appends() != appends {
		t.Errorf("verify appended %d messages", e.imap.Appends()-appends)
	}
	if n := len(e.pop.Messages()); n != len(e.source) {
		t.Errorf("POP3 maildrop holds %d messages after verify, want %d", n, len(e.source))
	}
}

// TestVerifyFindsDifferences alters one stored message, deletes another,
// and makes one POP3 message unreadable: verify marks them '*', '-' and '!'
// and the rest '='.
func TestVerifyFindsDifferences(t *testing.T) {
	e := newTestEnv(t, verifiable(t), pop3test.Config{})
	if _, err := e.run(Config{}); err != nil {
		t.Fatal(err)
	}
	c := e.imapClient()
	// u001 has a Message-ID: replace its copy with one altered byte.
	// u004 has none: just delete it.
	var victims imap.UIDSet
	for _, uidl := range []string{"u001", "u004"} {
		uid := journalUID(t, e.journal, uidl)
		victims.AddNum(imap.UID(uid))
	}
	altered := bytes.Replace(e.source[0], []byte("\r\n\r\n"), []byte("\r\nX-Altered: yes\r\n\r\n"), 1)
	if err := appendBytes(c, folder, altered); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(victims, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	e.pop.SetFault(pop3test.Fault{Command: "RETR", Arg: "3", ErrCode: "SYS/PERM", ErrText: "cannot read"})

	for _, withJournal := range []bool{true, false} {
		t.Run(fmt.Sprintf("journal=%v", withJournal), func(t *testing.T) {
			got, stats, err := e.verify(false, withJournal)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]VerifyMark{"u001": VerifyDiffer, "u004": VerifyMissing, "u003": VerifyError}
			for uidl, r := range got {
				w, ok := want[uidl]
				if !ok {
					w = VerifySame
				}
				if r.Mark != w {
					t.Errorf("%s: %c, want %c (%+v)", uidl, r.Mark, w, r)
				}
			}
			if stats.OK() || stats.Differ != 1 || stats.Missing != 1 || stats.Errors != 1 {
				t.Errorf("stats %+v, want 1 different, 1 missing, 1 error", *stats)
			}
		})
	}
}

// TestVerifyDuplicates: two identical POP3 messages need two stored copies;
// one copy satisfies only one of them.
func TestVerifyDuplicates(t *testing.T) {
	dup := []byte("Subject: same\r\nMessage-ID: <same@x>\r\n\r\nidentical\r\n")
	e := newTestEnv(t, []pop3test.Message{{UIDL: "a", Data: dup}, {UIDL: "b", Data: dup}}, pop3test.Config{})
	if _, err := e.run(Config{}); err != nil {
		t.Fatal(err)
	}
	c := e.imapClient()
	if err := c.Store(imap.UIDSetNum(imap.UID(journalUID(t, e.journal, "b"))), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	for _, withJournal := range []bool{true, false} {
		_, stats, err := e.verify(false, withJournal)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Same != 1 || stats.Missing+stats.Differ != 1 {
			t.Errorf("journal=%v: stats %+v, want one identical and one not", withJournal, *stats)
		}
	}
}

// TestVerifyMissingFolder: nothing was migrated, so everything is '-'.
func TestVerifyMissingFolder(t *testing.T) {
	e := newTestEnv(t, verifiable(t), pop3test.Config{})
	_, stats, err := e.verify(false, false)
	if err != nil {
		t.Fatal(err)
	}
	if !stats.FolderMissing || stats.Missing != len(e.source) {
		t.Errorf("stats %+v, want the folder missing and all %d messages missing", *stats, len(e.source))
	}
}

func TestCRLFCounter(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "a\r\nb": 4, "a\nb\n": 6, "a\rb\r": 6, "\r\r\n\n": 6, "x\r": 3} {
		var c crlfCounter
		// Fed byte by byte, to cross every boundary.
		for i := 0; i < len(in); i++ {
			c.Write([]byte{in[i]})
		}
		if c.total() != want {
			t.Errorf("%q: %d, want %d", in, c.total(), want)
		}
	}
}

func journalUID(t *testing.T, path, uidl string) uint32 {
	t.Helper()
	j, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	es, err := j.ByUIDL(uidl)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 || es[0].UID == 0 {
		t.Fatalf("no UID recorded for %s", uidl)
	}
	return es[0].UID
}

func appendBytes(c *imapclient.Client, folder string, msg []byte) error {
	cmd := c.Append(folder, int64(len(msg)), nil)
	if _, err := cmd.Write(msg); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}
