package imapappend

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// The folder checks a session makes before it appends (the separator, a
// folder's existence, UIDVALIDITY and message count) go over the same
// connection as the APPENDs that follow, so that an account costs the
// server one IMAP login where it used to cost two.

// collector gathers the untagged replies of one verb for the command that
// asked for them. One such command runs at a time (Client.cmu).
type collector struct {
	verb  string // "STATUS" or "LIST"
	lines []string
}

// maxCollected bounds the untagged lines one command gathers: a LIST of
// one pattern names a handful of folders, and a server that sends more is
// not believed.
const maxCollected = 1024

// collected hands an untagged reply to the command that asked for its
// verb, and reports whether it took it. c.mu is held.
func (c *Client) collected(rest string) bool {
	if c.collect == nil {
		return false
	}
	verb, _, _ := strings.Cut(rest, " ")
	if !strings.EqualFold(verb, c.collect.verb) || len(c.collect.lines) >= maxCollected {
		return false
	}
	c.collect.lines = append(c.collect.lines, rest)
	return true
}

// gather runs command, a full command line without its tag, collecting
// the untagged replies of verb.
func (c *Client) gather(ctx context.Context, verb, command string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("imap: %s: %w", command, err)
	}
	c.cmu.Lock()
	defer c.cmu.Unlock()
	col := &collector{verb: verb}
	c.mu.Lock()
	c.collect = col
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.collect = nil
		c.mu.Unlock()
	}()
	rep, err := c.roundTrip(c.timeout, func(tag string, _ chan reply) (*reply, error) {
		_, err := c.bw.WriteString(tag + " " + command + "\r\n")
		return nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("imap: %s: %w", command, err)
	}
	if rep.st.Type != imap.StatusResponseTypeOK {
		return nil, fmt.Errorf("imap: %s: %w", command, (*imap.Error)(rep.st))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return col.lines, nil
}

// Caps are the server's capabilities after login.
func (c *Client) Caps() imap.CapSet { return c.caps }

// Status asks for mailbox's UIDVALIDITY and message count. A NO (the
// mailbox does not exist) is an *imap.Error.
func (c *Client) Status(ctx context.Context, mailbox string) (*imap.StatusData, error) {
	lines, err := c.gather(ctx, "STATUS", "STATUS "+quoteMailbox(mailbox)+" (UIDVALIDITY MESSAGES)")
	if err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("imap: STATUS %q: no STATUS reply", mailbox)
	}
	// "STATUS name (UIDVALIDITY 1 MESSAGES 2)": the attributes are the
	// last parenthesized list, whatever the name holds.
	line := lines[len(lines)-1]
	open, end := strings.LastIndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return nil, fmt.Errorf("imap: STATUS %q: malformed reply %q", mailbox, clip(line))
	}
	data := &imap.StatusData{Mailbox: mailbox}
	f := strings.Fields(line[open+1 : end])
	for i := 0; i+1 < len(f); i += 2 {
		n, err := strconv.ParseUint(f[i+1], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("imap: STATUS %q: malformed reply %q", mailbox, clip(line))
		}
		switch strings.ToUpper(f[i]) {
		case "UIDVALIDITY":
			data.UIDValidity = uint32(n)
		case "MESSAGES":
			m := uint32(n)
			data.NumMessages = &m
		}
	}
	return data, nil
}

// List returns the hierarchy delimiter of each mailbox that matches
// pattern under ref (0 for a flat server), one entry a mailbox.
func (c *Client) List(ctx context.Context, ref, pattern string) ([]rune, error) {
	lines, err := c.gather(ctx, "LIST", "LIST "+quoteMailbox(ref)+" "+quoteMailbox(pattern))
	if err != nil {
		return nil, err
	}
	delims := make([]rune, 0, len(lines))
	for _, line := range lines {
		d, ok := listDelim(line)
		if !ok {
			return nil, fmt.Errorf("imap: LIST: malformed reply %q", clip(line))
		}
		delims = append(delims, d)
	}
	return delims, nil
}

// listDelim reads the delimiter of `LIST (flags) "/" name`: a quoted
// character, possibly escaped, or NIL.
func listDelim(line string) (rune, bool) {
	_, rest, ok := strings.Cut(line, ")")
	if !ok {
		return 0, false
	}
	rest = strings.TrimLeft(rest, " ")
	switch {
	case len(rest) >= 3 && strings.EqualFold(rest[:3], "NIL"):
		return 0, true
	case strings.HasPrefix(rest, `"\`) && len(rest) >= 4 && rest[3] == '"':
		return rune(rest[2]), true
	case len(rest) >= 3 && rest[0] == '"' && rest[2] == '"':
		return rune(rest[1]), true
	}
	return 0, false
}
