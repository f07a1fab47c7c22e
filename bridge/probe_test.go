package bridge

import (
	"context"
	"errors"
	"testing"

	"github.com/pop2imap/pop2imap/internal/pop3test"
)

// TestProbeAccount: a probe counts the maildrop, finds whether the folder
// exists, and changes nothing on either side; a wrong password on either
// side is the login's own error.
func TestProbeAccount(t *testing.T) {
	msgs := sampleMessages(t)[:3]
	e := newTestEnv(t, msgs, pop3test.Config{})
	pop, im := e.endpoints()
	ctx := context.Background()

	p, err := ProbeAccount(ctx, pop, im, "Archive/2020", 0)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, m := range msgs {
		size += int64(len(m.Data))
	}
	if p.Messages != 3 || p.Bytes != size || p.FolderExists {
		t.Errorf("probe: %+v; want 3 messages, %d bytes, no folder", p, size)
	}
	if got := len(e.imap.Messages("INBOX")); got != 0 {
		t.Errorf("the probe appended %d messages", got)
	}
	if len(e.pop.Messages()) != 3 {
		t.Errorf("the probe changed the maildrop")
	}
	if p, err := ProbeAccount(ctx, pop, im, "", 0); err != nil || !p.FolderExists || p.Folder != "INBOX" {
		t.Errorf("INBOX: %+v, %v", p, err)
	}

	bad := *im
	bad.Secret = staticSecret("wrong")
	_, err = ProbeAccount(ctx, pop, &bad, "", 0)
	var aerr *AuthError
	if !errors.As(err, &aerr) {
		t.Errorf("a wrong IMAP password: %v, want an *AuthError", err)
	}
}
