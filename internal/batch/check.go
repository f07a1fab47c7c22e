package batch

import (
	"context"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/fleet"
)

// Checked is what checking one account found: a probe, or why it failed.
type Checked struct {
	Account Account
	Probe   *bridge.Probe
	Err     error
}

// Check logs in to both sides of every account, within the runner's caps,
// asks the POP3 server STAT and looks the folder up without creating it.
// It changes nothing on either server. The results come back in the
// accounts' order.
func Check(ctx context.Context, accounts []Account, runner *fleet.Runner, timeout time.Duration) []Checked {
	out := make([]Checked, len(accounts))
	fed := each(ctx, runner.Jobs(), len(accounts), func(k int) bool {
		a := accounts[k]
		c := Checked{Account: a}
		c.Err = runner.Do(ctx, fleet.Need{POP3: a.POP3, IMAP: a.IMAP}, func(ctx context.Context, g fleet.Grant) error {
			var err error
			c.Probe, err = bridge.ProbeAccount(ctx, g.POP3, g.IMAP, a.Folder, timeout)
			return err
		})
		out[k] = c
		return true
	})
	for k := fed; k < len(accounts); k++ {
		out[k] = Checked{Account: accounts[k], Err: ctx.Err()}
	}
	return out
}
