// Package testservers stands up, for one test, the world a migration
// touches: a pop3test POP3 server and an imaptest IMAP server side by side
// on loopback, both closed when the test ends.
//
// The package is for tests only: the pop2imap binary must not link it.
// (`pop2imap demo` starts the same two servers itself; see internal/demo.)
package testservers

import (
	"testing"

	"github.com/pop2imap/pop2imap/internal/imaptest"
	"github.com/pop2imap/pop2imap/internal/pop3test"
)

// Config says who may log in to the two servers.
type Config struct {
	// POP3 configures the POP3 server, its credentials included.
	POP3 pop3test.Config
	// IMAPUser and IMAPPassword are the IMAP server's one account.
	IMAPUser, IMAPPassword string
	// IMAPOptions are passed on to imaptest.NewServer.
	IMAPOptions []imaptest.Option
}

// Pair is a POP3 server and an IMAP server.
type Pair struct {
	POP3 *pop3test.Server
	IMAP *imaptest.Server
}

// Start starts both servers, closes them when the test ends, and ends the
// test if either cannot start.
func Start(t testing.TB, cfg Config) *Pair {
	t.Helper()
	pop, err := pop3test.NewServer(cfg.POP3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pop.Close() })
	im, err := imaptest.NewServer(cfg.IMAPUser, cfg.IMAPPassword, cfg.IMAPOptions...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	return &Pair{POP3: pop, IMAP: im}
}
