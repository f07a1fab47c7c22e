package testservers

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/pop3test"
)

// greeting dials addr and returns the server's first line.
func greeting(t *testing.T, addr string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return bufio.NewReader(c).ReadString('\n')
}

// TestStartAndClose: both servers greet while the test runs, and neither
// accepts a connection once it has ended.
func TestStartAndClose(t *testing.T) {
	var popAddr, imapAddr string
	t.Run("running", func(t *testing.T) {
		p := Start(t, Config{POP3: pop3test.Config{Username: "u", Password: "p"}, IMAPUser: "u", IMAPPassword: "p"})
		popAddr, imapAddr = p.POP3.Addr(), p.IMAP.Addr()
		if g, err := greeting(t, popAddr); err != nil || !strings.HasPrefix(g, "+OK") {
			t.Errorf("POP3 greeting %q, %v", g, err)
		}
		if g, err := greeting(t, imapAddr); err != nil || !strings.HasPrefix(g, "* OK") {
			t.Errorf("IMAP greeting %q, %v", g, err)
		}
	})
	for _, addr := range []string{popAddr, imapAddr} {
		if g, err := greeting(t, addr); err == nil {
			t.Errorf("%s still greets after the test ended: %q", addr, g)
		}
	}
}
