package bridge

import (
	"bufio"
	"bytes"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
)

// messageMeta is what the pipeline needs to know from a message's header.
type messageMeta struct {
	MessageID string
	// Date is the INTERNALDATE to append with: the topmost Received date,
	// else the Date field; zero when neither parses.
	Date time.Time
}

// parseMeta reads what it can from a captured header. Any message is copied
// whatever its header looks like, so parse failures only leave fields empty.
func parseMeta(header []byte) messageMeta {
	var meta messageMeta
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(header)))
	if err != nil && h.Len() == 0 {
		return meta
	}
	meta.MessageID = strings.TrimSpace(h.Get("Message-Id"))
	if len(meta.MessageID) > 998 || strings.ContainsAny(meta.MessageID, "\r\n\x00") {
		meta.MessageID = ""
	}
	// The topmost Received field was added by the last server to handle the
	// message: its date is when the message arrived in the POP3 mailbox.
	if rcvd := h.Get("Received"); rcvd != "" {
		if i := strings.LastIndexByte(rcvd, ';'); i >= 0 {
			if t, ok := parseDate(rcvd[i+1:]); ok {
				meta.Date = t
				return meta
			}
		}
	}
	if t, ok := parseDate(h.Get("Date")); ok {
		meta.Date = t
	}
	return meta
}

// parseDate parses an RFC 5322 date, ignoring a trailing comment such as
// "(UTC)" and folding whitespace. Dates before 1970 or after next year are
// taken as garbage.
func parseDate(s string) (time.Time, bool) {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.IndexByte(s, '('); i > 0 {
		s = strings.TrimSpace(s[:i])
	}
	if s == "" {
		return time.Time{}, false
	}
	t, err := mail.ParseDate(s)
	if err != nil {
		return time.Time{}, false
	}
	if t.Year() < 1970 || t.After(time.Now().AddDate(1, 0, 0)) {
		return time.Time{}, false
	}
	return t, true
}
