package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/demo"
	"github.com/pop2imap/pop2imap/internal/imaptest"
	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/internal/testservers"
	"github.com/pop2imap/pop2imap/pop3"
	"github.com/pop2imap/pop2imap/state"
)

const (
	popUser, popPass   = "alice", "pop-secret-1"
	imapUser, imapPass = "alice@example.com", "imap-secret-2"
	folder             = "Archive"
)

// testEnv is one POP3 server, one IMAP server and a journal path: the whole
// world a migration touches.
type testEnv struct {
	t       *testing.T
	pop     *pop3test.Server
	imap    *imaptest.Server
	journal string
	source  [][]byte
}

func newTestEnv(t *testing.T, msgs []pop3test.Message, cfg pop3test.Config) *testEnv {
	t.Helper()
	cfg.Username, cfg.Password = popUser, popPass
	servers := testservers.Start(t, testservers.Config{POP3: cfg, IMAPUser: imapUser, IMAPPassword: imapPass})
	pop := servers.POP3
	e := &testEnv{t: t, pop: pop, imap: servers.IMAP, journal: filepath.Join(t.TempDir(), "test.journal")}
	for _, m := range msgs {
		pop.AddMessage(m.UIDL, m.Data)
		e.source = append(e.source, m.Data)
	}
	return e
}

// sampleMessages returns the demo corpus with distinct UIDLs.
func sampleMessages(t *testing.T) []pop3test.Message {
	t.Helper()
	mail, err := demo.SampleMail()
	if err != nil {
		t.Fatal(err)
	}
	var out []pop3test.Message
	for i, m := range mail {
		out = append(out, pop3test.Message{UIDL: fmt.Sprintf("u%03d", i+1), Data: m})
	}
	return out
}

func (e *testEnv) endpoints() (*Endpoint, *Endpoint) {
	pop := &Endpoint{Addr: e.pop.Addr(), Username: popUser, TLS: TLSNone, Secret: staticSecret(popPass), Timeout: 5 * time.Second}
	im := &Endpoint{Addr: e.imap.Addr(), Username: imapUser, TLS: TLSNone, Secret: staticSecret(imapPass), Timeout: 5 * time.Second}
	return pop, im
}

func staticSecret(s string) SecretFunc {
	return func(context.Context) (string, error) { return s, nil }
}

// run performs one migration as a fresh process would: it opens the journal,
// runs, and closes it again.
func (e *testEnv) run(cfg Config) (*Stats, error) {
	e.t.Helper()
	var j *state.Journal
	var err error
	if !cfg.DryRun {
		j, err = state.Open(e.journal)
		if err != nil {
			e.t.Fatal(err)
		}
		defer j.Close()
	}
	if cfg.Folder == "" {
		cfg.Folder = folder
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = time.Millisecond
	}
	pop, im := e.endpoints()
	m := &Migrator{Config: cfg, POP3: pop, IMAP: im, Journal: j, Stats: &Stats{}}
	err = m.Run(context.Background())
	return m.Stats, err
}

// runUntilDone reruns after failures, as a user would, and fails the test if
// that takes more than a few attempts.
func (e *testEnv) runUntilDone(cfg Config) {
	e.t.Helper()
	var errs []string
	for attempts, waits := 0, 0; attempts < 10; {
		_, err := e.run(cfg)
		if err == nil {
			return
		}
		// A rerun that comes before the server has noticed the last
		// session's dropped connection finds the maildrop locked; a user
		// would have waited that long anyway.
		var perr *pop3.Error
		if errors.As(err, &perr) && perr.Code == "IN-USE" && waits < 500 {
			waits++
			time.Sleep(10 * time.Millisecond)
			continue
		}
		attempts++
		errs = append(errs, err.Error())
	}
	e.t.Fatalf("migration did not complete after 10 reruns:\n%s", strings.Join(errs, "\n"))
}

func (e *testEnv) stored() [][]byte {
	e.t.Helper()
	return e.imap.Messages(folder)
}

// assertExactlyOnce checks that the folder holds want as a multiset: nothing
// lost, nothing duplicated, no byte changed.
func (e *testEnv) assertExactlyOnce(want [][]byte) {
	e.t.Helper()
	got := e.stored()
	used := make([]bool, len(got))
	lost := 0
	for _, w := range want {
		found := false
		for i, g := range got {
			if !used[i] && bytes.Equal(g, w) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			lost++
		}
	}
	extra := 0
	for _, u := range used {
		if !u {
			extra++
		}
	}
	if lost != 0 || extra != 0 {
		e.t.Fatalf("folder has %d messages for %d sources: %d lost or altered, %d extra", len(got), len(want), lost, extra)
	}
}

func (e *testEnv) commands(verb string) []string {
	var out []string
	for _, l := range e.pop.Log() {
		if strings.HasPrefix(strings.ToUpper(l), verb) {
			out = append(out, l)
		}
	}
	return out
}

// TestMigrateSampleMail proves the basic promise on the awkward sample
// corpus: every message arrives byte for byte, the POP3 maildrop is emptied
// with --delete, and every journal entry ends deleted.
func TestMigrateSampleMail(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
	stats, err := e.run(Config{Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	e.assertExactlyOnce(e.source)
	if n := len(e.pop.Messages()); n != 0 {
		t.Errorf("POP3 maildrop still holds %d messages", n)
	}
	if got, want := stats.Appended.Load(), int64(len(e.source)); got != want {
		t.Errorf("Appended = %d, want %d", got, want)
	}
	if got := stats.Deleted.Load(); got != int64(len(e.source)) {
		t.Errorf("Deleted = %d, want %d", got, len(e.source))
	}
	j, err := state.Open(e.journal)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	es, err := j.Entries()
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range es {
		if en.Step != state.Deleted {
			t.Errorf("journal entry %d (%s) is at step %v, want Deleted", en.ID, en.UIDL, en.Step)
		}
	}
}

// TestRerunAppendsNothing proves that a second run over the same mailbox
// sends no APPEND at all.
func TestRerunAppendsNothing(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
	if _, err := e.run(Config{}); err != nil {
		t.Fatal(err)
	}
	before := e.imap.Appends()
	stats, err := e.run(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if e.imap.Appends() != before {
		t.Errorf("rerun sent %d APPENDs", e.imap.Appends()-before)
	}
	if got := stats.AlreadyDone.Load(); got != int64(len(e.source)) {
		t.Errorf("AlreadyDone = %d, want %d", got, len(e.source))
	}
	if n := len(e.commands("RETR")); n != len(e.source) {
		t.Errorf("RETR sent %d times over two runs, want %d (the rerun must not retrieve)", n, len(e.source))
	}
	e.assertExactlyOnce(e.source)
}

// TestInterruptions cuts a run at each step boundary and then reruns until
// done: the folder must hold every message exactly once and the maildrop
// must end empty.
func TestInterruptions(t *testing.T) {
	tests := []struct {
		name    string
		pop     []pop3test.Fault
		imap    func(n int, data []byte) imaptest.AppendFault
		rewrite bool // the server stores bare LF as CRLF, as Dovecot does
		check   func(t *testing.T, e *testEnv)
	}{
		{name: "POP3 cut in the middle of RETR", pop: []pop3test.Fault{{Command: "RETR", Nth: 3, CutAfter: 40}}},
		{name: "POP3 error on RETR", pop: []pop3test.Fault{{Command: "RETR", Nth: 5, ErrCode: "SYS/TEMP", ErrText: "busy"}}},
		{name: "IMAP drops before storing", imap: nthAppend(2, imaptest.AppendDropBefore)},
		{
			name: "APPEND stored but reply lost",
			imap: nthAppend(3, imaptest.AppendLoseReply),
			check: func(t *testing.T, e *testEnv) {
				if e.imap.Appends() != len(e.source) {
					t.Errorf("%d APPENDs for %d messages: the lost reply was not recovered by search", e.imap.Appends(), len(e.source))
				}
			},
		},
		{
			name: "APPEND reply lost, server rewrites bare LF",
			imap: func(n int, data []byte) imaptest.AppendFault {
				if bytes.Contains(data, []byte("Bare LF line endings")) && n < 20 {
					return imaptest.AppendLoseReply
				}
				return imaptest.AppendOK
			},
			rewrite: true,
			check: func(t *testing.T, e *testEnv) {
				if e.imap.Appends() != len(e.source) {
					t.Errorf("%d APPENDs for %d messages: the rewritten copy was not recognised", e.imap.Appends(), len(e.source))
				}
			},
		},
		{
			name: "APPEND reply lost for a message without Message-ID",
			imap: func(n int, data []byte) imaptest.AppendFault {
				if bytes.Contains(data, []byte("Nightly report")) && n < 20 {
					return imaptest.AppendLoseReply
				}
				return imaptest.AppendOK
			},
		},
		{name: "POP3 cut on DELE", pop: []pop3test.Fault{{Command: "DELE", Nth: 2, CutAfter: 1}}},
		{name: "POP3 error on QUIT", pop: []pop3test.Fault{{Command: "QUIT", Nth: 1, ErrCode: "SYS/TEMP", ErrText: "cannot commit"}}},
		{name: "POP3 QUIT committed but reply cut", pop: []pop3test.Fault{{Command: "QUIT", Nth: 1, CutAfter: 1}}},
		{name: "POP3 UIDL fails", pop: []pop3test.Fault{{Command: "UIDL", Nth: 1, ErrCode: "SYS/TEMP"}}},
	}
	for _, tt := range tests {
		for _, retries := range []int{-1, 3} {
			t.Run(fmt.Sprintf("%s/retries=%d", tt.name, retries), func(t *testing.T) {
				e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
				for _, f := range tt.pop {
					e.pop.AddFault(f)
				}
				e.imap.SetAppendFault(tt.imap)
				want := e.source
				if tt.rewrite {
					e.imap.SetStoreRewrite(imaptest.DovecotLineEndings)
					want = nil
					for _, m := range e.source {
						want = append(want, imaptest.DovecotLineEndings(m))
					}
				}
				e.runUntilDone(Config{Delete: true, Retries: retries, IMAPConns: 2, Window: 4})
				e.assertExactlyOnce(want)
				if n := len(e.pop.Messages()); n != 0 {
					t.Errorf("POP3 maildrop still holds %d messages", n)
				}
				if tt.check != nil {
					tt.check(t, e)
				}
			})
		}
	}
}

func nthAppend(nth int, f imaptest.AppendFault) func(int, []byte) imaptest.AppendFault {
	return func(n int, _ []byte) imaptest.AppendFault {
		if n == nth {
			return f
		}
		return imaptest.AppendOK
	}
}

// TestDuplicateUIDLs: RFC 1939 forbids it, but broken servers list identical
// messages under one UIDL. Each is a message of its own and is copied once.
func TestDuplicateUIDLs(t *testing.T) {
	dup := []byte("Subject: same\r\nMessage-ID: <same@x>\r\n\r\nidentical\r\n")
	msgs := []pop3test.Message{{UIDL: "dup", Data: dup}, {UIDL: "dup", Data: dup}, {UIDL: "other", Data: []byte("Subject: other\r\n\r\nbody\r\n")}}
	e := newTestEnv(t, msgs, pop3test.Config{})
	e.imap.SetAppendFault(nthAppend(2, imaptest.AppendLoseReply))
	e.runUntilDone(Config{Retries: -1})
	e.runUntilDone(Config{Retries: -1})
	e.assertExactlyOnce(e.source)
}

// TestRefusedMessageStaysOnServer: a message the IMAP server refuses is
// reported, recorded and left on the POP3 server; the others are deleted,
// and only after their appends were confirmed.
func TestRefusedMessageStaysOnServer(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
	e.imap.SetAppendFault(func(_ int, data []byte) imaptest.AppendFault {
		if len(data) > 100_000 {
			return imaptest.AppendRefuse
		}
		return imaptest.AppendOK
	})
	stats, err := e.run(Config{Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if stats.LeftBehind.Load() != 1 {
		t.Errorf("LeftBehind = %d, want 1", stats.LeftBehind.Load())
	}
	left := e.pop.Messages()
	if len(left) != 1 || len(left[0].Data) < 100_000 {
		t.Fatalf("POP3 maildrop holds %d messages, want just the big one", len(left))
	}
	var want [][]byte
	for _, s := range e.source {
		if len(s) <= 100_000 {
			want = append(want, s)
		}
	}
	e.assertExactlyOnce(want)
	if n := len(e.commands("QUIT")); n != 1 {
		t.Errorf("QUIT sent %d times, want 1: a refusal is recorded, so the session may end normally", n)
	}
}

// TestOverQuotaStops: OVERQUOTA ends the run with ErrOverQuota, and nothing
// that was not stored is deleted.
func TestOverQuotaStops(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
	e.imap.SetAppendFault(func(n int, _ []byte) imaptest.AppendFault {
		if n >= 3 {
			return imaptest.AppendOverQuota
		}
		return imaptest.AppendOK
	})
	_, err := e.run(Config{Delete: true, IMAPConns: 1})
	if !errors.Is(err, ErrOverQuota) {
		t.Fatalf("err = %v, want ErrOverQuota", err)
	}
	if got := len(e.pop.Messages()); got != len(e.source) {
		t.Errorf("POP3 maildrop holds %d, want all %d: without QUIT no DELE takes effect", got, len(e.source))
	}
	e.imap.SetAppendFault(nil)
	e.runUntilDone(Config{Delete: true})
	e.assertExactlyOnce(e.source)
}

// TestDryRunChangesNothing: a dry run retrieves nothing, appends nothing,
// deletes nothing and creates no journal.
func TestDryRunChangesNothing(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
	stats, err := e.run(Config{DryRun: true, Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if stats.ToCopy.Load() != int64(len(e.source)) {
		t.Errorf("ToCopy = %d, want %d", stats.ToCopy.Load(), len(e.source))
	}
	if e.imap.Appends() != 0 || len(e.commands("RETR")) != 0 || len(e.commands("DELE")) != 0 {
		t.Errorf("dry run sent %d APPEND, %d RETR, %d DELE", e.imap.Appends(), len(e.commands("RETR")), len(e.commands("DELE")))
	}
	if len(e.pop.Messages()) != len(e.source) {
		t.Error("dry run changed the POP3 maildrop")
	}
	if _, err := filepath.Glob(e.journal); err == nil {
		if m, _ := filepath.Glob(e.journal); len(m) != 0 {
			t.Error("dry run created a journal")
		}
	}
}

// TestLimit copies in slices of --limit and finishes with exactly one copy
// of each.
func TestLimit(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
	total := 0
	for i := 0; i < 10 && total < len(e.source); i++ {
		stats, err := e.run(Config{Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		if n := stats.Appended.Load(); n > 4 {
			t.Fatalf("run %d appended %d with --limit 4", i, n)
		}
		total += int(stats.Appended.Load())
	}
	e.assertExactlyOnce(e.source)
}

// TestDeleteOnlyWhatIsConfirmed checks the order on the wire: every DELE n
// follows the APPEND of message n, never precedes it.
func TestDeleteOnlyWhatIsConfirmed(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
	e.imap.SetAppendFault(nthAppend(4, imaptest.AppendDropBefore))
	_, err := e.run(Config{Delete: true, Retries: -1, IMAPConns: 1, Window: 2})
	if err == nil {
		t.Fatal("expected the run to fail on the dropped IMAP connection")
	}
	if got := len(e.pop.Messages()); got != len(e.source) {
		t.Fatalf("a failed session deleted %d messages", len(e.source)-got)
	}
	if len(e.commands("QUIT")) != 0 {
		t.Error("QUIT was sent after a failure: it would commit DELEs of an unfinished session")
	}
}

// TestNoPipelining runs against a server without PIPELINING, and without
// TOP, to prove the lock-step path.
func TestNoPipelining(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{NoPipelining: true, NoTop: true})
	if _, err := e.run(Config{Delete: true}); err != nil {
		t.Fatal(err)
	}
	e.assertExactlyOnce(e.source)
}

// TestBaseline: --baseline records what is on the server without retrieving
// it; later runs copy only mail that arrived since, and never delete the
// baselined messages.
func TestBaseline(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
	stats, err := e.run(Config{Baseline: true})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Baselined.Load() != int64(len(e.source)) || len(e.commands("RETR")) != 0 || e.imap.Appends() != 0 {
		t.Fatalf("baseline: %d baselined, %d RETR, %d APPEND", stats.Baselined.Load(), len(e.commands("RETR")), e.imap.Appends())
	}
	fresh := []byte("Subject: new mail\r\nMessage-ID: <new@x>\r\n\r\narrived after the baseline\r\n")
	e.pop.AddMessage("new-1", fresh)
	if _, err := e.run(Config{Delete: true}); err != nil {
		t.Fatal(err)
	}
	e.assertExactlyOnce([][]byte{fresh})
	if got := len(e.pop.Messages()); got != len(e.source) {
		t.Errorf("POP3 holds %d messages, want the %d baselined ones", got, len(e.source))
	}
}

// TestDeleteAfter: with DeleteAfter, a copy stays on the POP3 server until
// its append is that old, by the journal's clock.
func TestDeleteAfter(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
	if _, err := e.run(Config{DeleteAfter: 7 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if len(e.pop.Messages()) != len(e.source) || len(e.commands("DELE")) != 0 {
		t.Fatal("fresh copies were deleted before their time")
	}
	later := func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }
	stats, err := e.run(Config{DeleteAfter: 7 * 24 * time.Hour, Now: later})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Deleted.Load() != int64(len(e.source)) || len(e.pop.Messages()) != 0 {
		t.Errorf("after 8 days: deleted %d, %d left on the server", stats.Deleted.Load(), len(e.pop.Messages()))
	}
	e.assertExactlyOnce(e.source)
}

// TestServerKeepsDeletedMessage: a server that still lists a message after a
// committed DELE (some do, for a while) gets it deleted again, and it is not
// copied twice.
func TestServerKeepsDeletedMessage(t *testing.T) {
	msgs := sampleMessages(t)[:3]
	e := newTestEnv(t, msgs, pop3test.Config{})
	if _, err := e.run(Config{Delete: true}); err != nil {
		t.Fatal(err)
	}
	e.pop.AddMessage(msgs[0].UIDL, msgs[0].Data) // it comes back
	stats, err := e.run(Config{Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Appended.Load() != 0 || len(e.pop.Messages()) != 0 {
		t.Errorf("appended %d, %d left on the server", stats.Appended.Load(), len(e.pop.Messages()))
	}
	e.assertExactlyOnce(e.source)
}

// TestRetryRefusedAfter: with RetryRefusedAfter, a refused message is not
// retrieved again until the refusal is that old; without it, every run
// tries again.
func TestRetryRefusedAfter(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t)[:3], pop3test.Config{})
	e.imap.SetAppendFault(func(int, []byte) imaptest.AppendFault { return imaptest.AppendRefuse })
	cfg := Config{Delete: true, RetryRefusedAfter: time.Hour}
	if _, err := e.run(cfg); err != nil {
		t.Fatal(err)
	}
	retrs := len(e.commands("RETR"))
	stats, err := e.run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.commands("RETR")) != retrs || stats.AlreadyDone.Load() != 3 || len(e.commands("DELE")) != 0 {
		t.Errorf("within the hour: %d new RETR, %d done, %d DELE; want 0, 3, 0",
			len(e.commands("RETR"))-retrs, stats.AlreadyDone.Load(), len(e.commands("DELE")))
	}
	e.imap.SetAppendFault(nil)
	cfg.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := e.run(cfg); err != nil {
		t.Fatal(err)
	}
	e.assertExactlyOnce(e.source)
	if len(e.pop.Messages()) != 0 {
		t.Error("messages copied after the retry were not deleted")
	}
}

// TestOversizeBodyStops: a body far larger than LIST said stops the run with
// OversizeError instead of filling the disk, and deletes nothing.
func TestOversizeBodyStops(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t)[:3], pop3test.Config{})
	big := bytes.Repeat([]byte("x"), 3<<20)
	e.pop.AddMessage("liar", big)
	// The server claims 100 bytes for a 3 MiB message.
	e.pop.SetListSize("liar", 100)
	_, err := e.run(Config{Delete: true, Retries: -1})
	var oerr *OversizeError
	if !errors.As(err, &oerr) || oerr.ListSize != 100 {
		t.Fatalf("err = %v, want OversizeError for a 100-byte listing", err)
	}
	if len(e.pop.Messages()) != 4 {
		t.Error("a failed session deleted messages")
	}
}

// TestMigrateInRetrChunks runs the RETRs in runs much shorter than the
// maildrop, with --delete, and checks that every message arrives once and
// is deleted.
func TestMigrateInRetrChunks(t *testing.T) {
	defer func(n int) { retrChunk = n }(retrChunk)
	retrChunk = 3
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
	if len(e.source) <= 2*retrChunk {
		t.Fatalf("the sample has %d messages; the test needs more than %d", len(e.source), 2*retrChunk)
	}
	stats, err := e.run(Config{Delete: true, Window: 2})
	if err != nil {
		t.Fatal(err)
	}
	e.assertExactlyOnce(e.source)
	if n := len(e.pop.Messages()); n != 0 {
		t.Errorf("POP3 maildrop still holds %d messages", n)
	}
	if got := len(e.commands("RETR")); got != len(e.source) {
		t.Errorf("RETR sent %d times, want %d", got, len(e.source))
	}
	if got := stats.Deleted.Load(); got != int64(len(e.source)) {
		t.Errorf("Deleted = %d, want %d", got, len(e.source))
	}
}

// TestDryRunWritesNoJournal: a dry run over an existing journal, with
// --delete, takes the real path but leaves the journal's bytes as they
// were, appends nothing and deletes nothing; with --baseline it would copy
// nothing either.
func TestDryRunWritesNoJournal(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
	if _, err := e.run(Config{Limit: 3}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(e.journal)
	if err != nil {
		t.Fatal(err)
	}
	appends := e.imap.Appends()
	j, err := state.Open(e.journal)
	if err != nil {
		t.Fatal(err)
	}
	pop, im := e.endpoints()
	var would []EventKind
	m := &Migrator{Config: Config{DryRun: true, Delete: true, Folder: folder},
		POP3: pop, IMAP: im, Journal: j,
		OnEvent: func(ev Event) { would = append(would, ev.Kind) }}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	j.Close()
	after, _ := os.ReadFile(e.journal)
	if !bytes.Equal(before, after) {
		t.Error("a dry run wrote to the journal")
	}
	if e.imap.Appends() != appends || len(e.commands("DELE")) != 0 {
		t.Errorf("a dry run appended %d and sent %d DELE", e.imap.Appends()-appends, len(e.commands("DELE")))
	}
	if !slices.Contains(would, EventWouldCopy) || !slices.Contains(would, EventWouldDelete) {
		t.Errorf("a dry run announced %v, want would-copy and would-delete", would)
	}

	j, err = state.Open(e.journal)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	m = &Migrator{Config: Config{DryRun: true, Baseline: true, Folder: folder}, POP3: pop, IMAP: im, Journal: j, Stats: &Stats{}}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(e.journal); !bytes.Equal(before, after) || m.Stats.ToCopy.Load() != 0 {
		t.Errorf("a dry run with --baseline: journal changed %v, would copy %d", !bytes.Equal(before, after), m.Stats.ToCopy.Load())
	}
}
