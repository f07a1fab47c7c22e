package imaptest

import (
	"bytes"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestFetchServesExactBytes: a whole-message UID FETCH returns what APPEND
// stored, byte for byte, including messages imapmemserver would rebuild.
func TestFetchServesExactBytes(t *testing.T) {
	s, err := NewServer("u", "p")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("u", "p").Wait(); err != nil {
		t.Fatal(err)
	}
	msgs := [][]byte{[]byte("no header, just text\r\n"), {}, []byte("A: b\nbare: lf\n\nbody\n"), []byte("Subject: x\r\n\r\n\x00nul\r")}
	for _, m := range msgs {
		cmd := c.Append("INBOX", int64(len(m)), nil)
		cmd.Write(m)
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	got, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("fetched %d messages, want %d", len(got), len(msgs))
	}
	for i, m := range got {
		if b := m.FindBodySection(section); !bytes.Equal(b, msgs[i]) {
			t.Errorf("message %d: fetched %q, stored %q", i+1, b, msgs[i])
		}
	}
	if n := len(s.Messages("INBOX")); n != len(msgs) {
		t.Errorf("Messages returned %d, want %d", n, len(msgs))
	}
}
