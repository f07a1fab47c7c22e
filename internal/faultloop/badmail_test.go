package faultloop

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/dovecottest"
	"github.com/pop2imap/pop2imap/internal/faultproxy"
	"github.com/pop2imap/pop2imap/internal/pop3test"
)

// twin is a message that a broken POP3 server lists twice under one UIDL.
var twin = []byte("From: twin@example.org\r\nSubject: listed twice under one UIDL\r\nMessage-ID: <twin@badmail.example>\r\n\r\nidentical\r\n")

// dovecotView returns what Dovecot's FETCH shows for each of msgs once it
// has stored them by APPEND: the reference a copy by pop2imap must equal.
func dovecotView(t *testing.T, d *dovecottest.Server, user string, msgs [][]byte) [][]byte {
	t.Helper()
	d.AddUser(t, user, "view-pass")
	d.SeedMaildrop(t, user, msgs)
	got := d.FetchAll(t, user, "view-pass", "INBOX")
	if len(got) != len(msgs) {
		t.Fatalf("Dovecot stored %d of %d reference messages", len(got), len(msgs))
	}
	return got
}

// TestDovecotBadMail copies the bad mail (testdata/badmail, the 1 MiB line,
// and two identical messages under one UIDL) from a POP3 server into a real
// Dovecot with the real binary. Every message must arrive exactly once, as
// Dovecot stores the same bytes appended directly; the empty message, which
// Dovecot refuses, must be reported, left on the POP3 server, and give exit
// code 3; none may be skipped silently, and a rerun copies nothing again.
func TestDovecotBadMail(t *testing.T) {
	d := dovecottest.Start(t)
	bad, err := BadMail("../../testdata/badmail")
	if err != nil {
		t.Fatal(err)
	}
	const popPass, imapPass = "badmail-Pop-Secret", "badmail-Imap-Secret"
	pop, err := pop3test.NewServer(pop3test.Config{Username: "alice", Password: popPass})
	if err != nil {
		t.Fatal(err)
	}
	defer pop.Close()
	var toStore [][]byte
	var emptyUIDL string
	for _, m := range bad {
		pop.AddMessage(m.Name, m.Data)
		if len(m.Data) == 0 {
			emptyUIDL = m.Name
			continue
		}
		toStore = append(toStore, m.Data)
	}
	pop.AddMessage("twin", twin)
	pop.AddMessage("twin", twin)
	toStore = append(toStore, twin, twin)
	want := dovecotView(t, d, "reference", toStore)
	d.AddUser(t, "dst", imapPass)

	dir := t.TempDir()
	run := func() runResult {
		return runBinary(t, runOptions{
			args: []string{"migrate", "--pop3", pop.Addr(), "--pop3-user", "alice", "--pop3-tls", "none",
				"--imap", d.IMAPAddr, "--imap-user", "dst", "--imap-tls", "none", "--folder", "Bad Mail",
				"--delete", "--state", filepath.Join(dir, "journal"), "--report", filepath.Join(dir, "report.json"),
				"--progress", "never", "-v"},
			env: []string{"POP2IMAP_POP3_PASSWORD=" + popPass, "POP2IMAP_IMAP_PASSWORD=" + imapPass},
		})
	}
	for i, wantAppended := range []string{fmt.Sprint(len(toStore)), "0"} {
		res := run()
		if res.code != exitLeftBehind {
			t.Fatalf("run %d: exit %d, want %d (the empty message is refused)\n%s", i+1, res.code, exitLeftBehind, tail(res.output, 15))
		}
		if !strings.Contains(res.output, "Appended:      "+wantAppended+"\n") {
			t.Errorf("run %d: want %s appended:\n%s", i+1, wantAppended, tail(res.output, 12))
		}
		if left := leftInReport(t, filepath.Join(dir, "report.json")); len(left) != 1 || left[0] != emptyUIDL {
			t.Errorf("run %d: the report lists %q as left behind, want just %q", i+1, left, emptyUIDL)
		}
		if !strings.Contains(res.output, "left on the POP3 server") || !strings.Contains(res.output, emptyUIDL) {
			t.Errorf("run %d: the log does not say that %s was left behind", i+1, emptyUIDL)
		}
		got := d.FetchAll(t, "dst", imapPass, "Bad Mail")
		if missing, extra := multisetDiff(got, want); missing != 0 || extra != 0 {
			t.Errorf("run %d: the folder holds %d messages for %d: %d missing or altered, %d extra", i+1, len(got), len(want), missing, extra)
		}
		if left := pop.Messages(); len(left) != 1 || left[0].UIDL != emptyUIDL {
			t.Errorf("run %d: POP3 holds %d messages, want only the refused %s", i+1, len(left), emptyUIDL)
		}
	}
}

// multisetDiff reports how many of want are missing from got and how many
// of got are extra.
func multisetDiff(got, want [][]byte) (missing, extra int) {
	count := map[string]int{}
	for _, g := range got {
		count[string(g)]++
	}
	for _, w := range want {
		if count[string(w)] > 0 {
			count[string(w)]--
		} else {
			missing++
		}
	}
	for _, n := range count {
		extra += n
	}
	return missing, extra
}

// TestDovecotRecoversLostReply stores each bad message in a real Dovecot
// while the tagged reply to its APPEND is swallowed, so that pop2imap
// cannot know the outcome. Its retry must find the stored copy in the
// folder instead of storing a second one, however odd the message's bytes.
func TestDovecotRecoversLostReply(t *testing.T) {
	d := dovecottest.Start(t)
	bad, err := BadMail("../../testdata/badmail")
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range bad {
		if len(m.Data) == 0 {
			continue // Dovecot refuses it
		}
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			const popPass = "lost-reply-Pop"
			imapPass := fmt.Sprintf("lost-reply-Imap-%d", i)
			want := dovecotView(t, d, fmt.Sprintf("view%d", i), [][]byte{m.Data})
			dst := fmt.Sprintf("lost%d", i)
			d.AddUser(t, dst, imapPass)
			pop, err := pop3test.NewServer(pop3test.Config{Username: "alice", Password: popPass})
			if err != nil {
				t.Fatal(err)
			}
			defer pop.Close()
			pop.AddMessage(m.Name, m.Data)
			px, err := faultproxy.Listen(d.IMAPAddr, faultproxy.Fault{Dir: faultproxy.Downstream, PeerSends: "APPEND", Action: faultproxy.Stall})
			if err != nil {
				t.Fatal(err)
			}
			defer px.Close()
			dir := t.TempDir()
			res := runBinary(t, runOptions{
				args: []string{"migrate", "--pop3", pop.Addr(), "--pop3-user", "alice", "--pop3-tls", "none",
					"--imap", px.Addr(), "--imap-user", dst, "--imap-tls", "none", "--imap-conns", "1",
					"--delete", "--state", filepath.Join(dir, "journal"), "--progress", "never", "--timeout", "3s"},
				env:       []string{"POP2IMAP_POP3_PASSWORD=" + popPass, "POP2IMAP_IMAP_PASSWORD=" + imapPass},
				timeLimit: 2 * time.Minute,
			})
			if len(px.Fired()) == 0 {
				t.Fatalf("the APPEND reply was never swallowed; exit %d\n%s", res.code, tail(res.output, 10))
			}
			got := d.FetchAll(t, dst, imapPass, "INBOX")
			if len(got) != 1 || !bytes.Equal(got[0], want[0]) {
				t.Errorf("after a lost APPEND reply the folder holds %d copies (exit %d), want exactly 1:\n%s", len(got), res.code, tail(res.output, 6))
			}
			if res.code != exitOK {
				t.Errorf("exit %d, want 0\n%s", res.code, tail(res.output, 10))
			}
			if n := len(pop.Messages()); n != 0 {
				t.Errorf("POP3 still holds %d messages", n)
			}
		})
	}
}
