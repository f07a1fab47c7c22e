package bridge

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/pop3"
)

// cachedTokens is a TokenSource that hands out a cached token until told
// that it was refused, as a token file does.
type cachedTokens struct {
	mu       sync.Mutex
	current  string
	next     string
	refused  []string
	accessed int
}

func (c *cachedTokens) AccessToken(context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.accessed++
	return c.current, nil
}

func (c *cachedTokens) Refresh(_ context.Context, refused string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refused = append(c.refused, refused)
	if refused == c.current {
		c.current = c.next
	}
	return c.current, nil
}

// TestTokenSourceSecretRefreshesRefused: a cached token that the server
// refuses leads to one Refresh naming that token, and the login succeeds
// with the new one, on POP3 and on IMAP. Without the refused token in the
// context, the source would hand out the same stale token again.
func TestTokenSourceSecretRefreshesRefused(t *testing.T) {
	backend, err := pop3test.NewServer(pop3test.Config{Username: popUser, Password: popPass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	for _, proto := range []string{"pop3", "imap"} {
		t.Run(proto, func(t *testing.T) {
			tokens := newTokenAuthority([]string{"good"}, "unused")
			src := &cachedTokens{current: "stale", next: "good"}
			ep := &Endpoint{TLS: TLSNone, OAuth2: true, Secret: TokenSourceSecret(src), Timeout: 5 * time.Second}
			var err error
			if proto == "pop3" {
				front := newOAuthPOP3(t, popUser, tokens, backend)
				ep.Addr, ep.Username = front.addr(), popUser
				var c *pop3.Client
				if c, err = DialPOP3(context.Background(), ep); err == nil {
					c.Quit()
				}
			} else {
				im := newSASLIMAP(t, saslIMAPOptions{tokens: tokens, insecureAuth: true})
				ep.Addr, ep.Username = im.addr(), imapUser
				var c interface{ Close() error }
				if c, err = DialIMAP(context.Background(), ep); err == nil {
					c.Close()
				}
			}
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			if len(src.refused) != 1 || src.refused[0] != "stale" || src.accessed != 1 {
				t.Errorf("AccessToken called %d times, Refresh with %q; want 1 and [stale]", src.accessed, src.refused)
			}
		})
	}
}

func TestRefusedTokenAbsent(t *testing.T) {
	if got := RefusedToken(context.Background()); got != "" {
		t.Errorf("RefusedToken of a plain context = %q", got)
	}
}
