// Package demo is what `pop2imap demo` migrates between: a sample mailbox
// chosen to be hard to copy faithfully, served by an in-process POP3 server
// (internal/pop3test) and received by an in-process IMAP server
// (internal/imaptest), both on 127.0.0.1.
//
// This is the one place where the shipped binary links the in-process test
// servers; docs/DESIGN.md ("What the binary links") says why. The servers
// start with their fault hooks unset, so they behave as plain, careful
// servers. The package never prints: the command draws the results.
package demo

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"sort"

	"github.com/pop2imap/pop2imap/internal/imaptest"
	"github.com/pop2imap/pop2imap/internal/pop3test"
)

//go:embed mail/*.eml
var sampleMail embed.FS

// SampleMail returns the sample messages in name order. They are chosen to
// be hard to copy faithfully: dot-stuffed lines, 8-bit headers, bare LF
// line endings, no Message-ID, a Message-ID shared by two messages, no
// header at all, an empty message and a 400 KB attachment.
func SampleMail() ([][]byte, error) {
	names, err := fs.Glob(sampleMail, "mail/*.eml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([][]byte, 0, len(names))
	for _, n := range names {
		b, err := sampleMail.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Account is one login on one of the demo servers.
type Account struct {
	User, Password string
}

// Servers are the demo's POP3 server, loaded with the sample mail, and its
// empty IMAP server.
type Servers struct {
	POP3 *pop3test.Server
	IMAP *imaptest.Server
	// Mail is what the POP3 server held at the start.
	Mail [][]byte
}

// Start starts both servers on 127.0.0.1 and puts the sample mail on the
// POP3 server. The caller closes them.
func Start(pop3, imap Account) (*Servers, error) {
	mail, err := SampleMail()
	if err != nil {
		return nil, fmt.Errorf("demo: sample mail: %w", err)
	}
	src, err := pop3test.NewServer(pop3test.Config{Username: pop3.User, Password: pop3.Password})
	if err != nil {
		return nil, fmt.Errorf("demo: starting the POP3 server: %w", err)
	}
	for i, m := range mail {
		src.AddMessage(fmt.Sprintf("demo-%03d", i+1), m)
	}
	dst, err := imaptest.NewServer(imap.User, imap.Password)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("demo: starting the IMAP server: %w", err)
	}
	return &Servers{POP3: src, IMAP: dst, Mail: mail}, nil
}

// Close stops both servers.
func (s *Servers) Close() {
	s.POP3.Close()
	s.IMAP.Close()
}

// Result compares the IMAP folder with the sample mail.
type Result struct {
	InFolder   int // messages in the IMAP folder
	Identical  int // sample messages found byte for byte in the folder
	Total      int // sample messages
	LeftOnPOP3 int // messages still on the POP3 server
}

// Passed reports whether every sample message is in the folder exactly
// once, unchanged, and none is left on the POP3 server.
func (r Result) Passed() bool {
	return r.Identical == r.Total && r.InFolder == r.Total && r.LeftOnPOP3 == 0
}

// Check compares folder on the IMAP server with the sample mail, byte for
// byte. Parallel appends store messages in any order, so it matches them
// as a multiset.
func (s *Servers) Check(folder string) Result {
	got := s.IMAP.Messages(folder)
	r := Result{InFolder: len(got), Total: len(s.Mail), LeftOnPOP3: len(s.POP3.Messages())}
	used := make([]bool, len(got))
	for _, m := range s.Mail {
		for i, g := range got {
			if !used[i] && bytes.Equal(g, m) {
				used[i] = true
				r.Identical++
				break
			}
		}
	}
	return r
}
