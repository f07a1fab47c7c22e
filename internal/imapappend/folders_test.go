package imapappend

import (
	"context"
	"errors"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestClientFolderChecks: STATUS and LIST read their untagged replies,
// whatever the mailbox name holds, alongside the other untagged replies a
// server sends; a NO is an *imap.Error.
func TestClientFolderChecks(t *testing.T) {
	srv := newScriptedIMAP(t, "IMAP4rev1 LITERAL+ UIDPLUS", func(s *imapScript) {
		for {
			tag, line, _, err := s.command()
			if err != nil {
				return
			}
			switch line {
			case `STATUS "From (old) ISP" (UIDVALIDITY MESSAGES)`:
				s.send("* 3 EXISTS\r\n* STATUS {14}\r\nFrom (old) ISP (MESSAGES 42 UIDVALIDITY 1700000001)\r\n%s OK done", tag)
			case `STATUS "Missing" (UIDVALIDITY MESSAGES)`:
				s.send("%s NO [NONEXISTENT] no such mailbox", tag)
			case `LIST "" ""`:
				s.send("* LIST (\\Noselect) \".\" \"\"\r\n%s OK done", tag)
			case `LIST "" "Archive"`:
				s.send("* LIST (\\HasNoChildren) \"\\\\\" Archive\r\n* LIST () NIL Archive2\r\n%s OK done", tag)
			case `LIST "" "Nothing"`:
				s.send("%s OK done", tag)
			case "LOGOUT":
				s.send("%s OK bye", tag)
				return
			default:
				s.send("%s BAD unexpected %q", tag, line)
			}
		}
	})
	c := srv.dial(t, 0)
	defer c.Close()
	ctx := context.Background()

	st, err := c.Status(ctx, "From (old) ISP")
	if err != nil || st.UIDValidity != 1700000001 || st.NumMessages == nil || *st.NumMessages != 42 {
		t.Fatalf("STATUS: %+v, %v", st, err)
	}
	_, err = c.Status(ctx, "Missing")
	var ierr *imap.Error
	if !errors.As(err, &ierr) || ierr.Type != imap.StatusResponseTypeNo {
		t.Fatalf("STATUS of a missing mailbox: %v", err)
	}
	for _, tt := range []struct {
		pattern string
		want    []rune
	}{{"", []rune{'.'}}, {"Archive", []rune{'\\', 0}}, {"Nothing", nil}} {
		got, err := c.List(ctx, "", tt.pattern)
		if err != nil || string(got) != string(tt.want) {
			t.Errorf("LIST %q: %q, %v; want %q", tt.pattern, got, err, tt.want)
		}
	}
}
