package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pop2imap/pop2imap/internal/dovecottest"
	"github.com/pop2imap/pop2imap/internal/tcprelay"
)

// TestDovecotBridgeManyAccountsUnderCap is the scene the batch issue
// opens with: 300 accounts on one Dovecot, one `bridge --once` cycle each.
// Without a cap that opened 567 connections at once and 169 cycles
// failed. With --max-conns-per-host 16 every cycle completes, every
// message arrives once, and Dovecot never sees more than 16 connections,
// counted by relays in front of it rather than by pop2imap itself.
func TestDovecotBridgeManyAccountsUnderCap(t *testing.T) {
	accounts, perAccount := 300, 2
	if testing.Short() {
		accounts = 60
	}
	const maxConns = 16
	d := dovecottest.Start(t)
	d.AddUser(t, "fleetdst", "dst-pass")
	var seen tcprelay.Gauge
	relay := func(target string) string {
		r, err := tcprelay.Listen(target, seen.Handler)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r.Addr()
	}
	popAddr, imapAddr := relay(d.POP3Addr), relay(d.IMAPAddr)

	dir := t.TempDir()
	t.Setenv("TEST_FLEET_PASSWORD", "src-pass")
	t.Setenv("TEST_FLEET_DST_PASSWORD", "dst-pass")
	var cfg strings.Builder
	for i := 0; i < accounts; i++ {
		user := fmt.Sprintf("fleet%03d", i)
		d.AddUser(t, user, "src-pass")
		d.SeedMaildrop(t, user, dovecotMail(i*perAccount, perAccount))
		fmt.Fprintf(&cfg, `
[[account]]
name = %q
folder = "From %s"
journal = "%s.journal"
delete = "now"
  [account.pop3]
  server = %q
  user = %q
  tls = "none"
  password = { env = "TEST_FLEET_PASSWORD" }
  [account.imap]
  server = %q
  user = "fleetdst"
  tls = "none"
  password = { env = "TEST_FLEET_DST_PASSWORD" }
`, user, user, user, popAddr, user, imapAddr)
	}
	cfgPath := filepath.Join(dir, "bridge.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	code, _, stderr := runCLI(t, "bridge", "--once", "--config", cfgPath, "--jobs", "32", "--max-conns-per-host", fmt.Sprint(maxConns))
	if code != 0 {
		t.Fatalf("bridge --once exited %d:\n%s", code, lastLines(stderr, 20))
	}
	if n := strings.Count(stderr, "cycle done"); n != accounts {
		t.Errorf("%d cycles done, want %d", n, accounts)
	}
	if p := seen.Peak(); p > maxConns {
		t.Errorf("Dovecot saw %d connections at once; the cap is %d", p, maxConns)
	}
	t.Logf("%d accounts, peak %d connections at once (cap %d)", accounts, seen.Peak(), maxConns)
	for i := 0; i < accounts; i += accounts / 10 {
		user := fmt.Sprintf("fleet%03d", i)
		got := d.FetchAll(t, "fleetdst", "dst-pass", "From "+user)
		want := dovecotMail(i*perAccount, perAccount)
		if len(got) != len(want) {
			t.Fatalf("%s: %d messages in the folder, want %d", user, len(got), len(want))
		}
		// Parallel appenders may store them in any order.
		sort.Slice(got, func(a, b int) bool { return string(got[a]) < string(got[b]) })
		sort.Slice(want, func(a, b int) bool { return string(want[a]) < string(want[b]) })
		for k := range want {
			if string(got[k]) != string(want[k]) {
				t.Errorf("%s: message %d differs:\n%q\nwant\n%q", user, k, got[k], want[k])
			}
		}
		if left := d.RetrAll(t, user, "src-pass"); len(left) != 0 {
			t.Errorf("%s: %d messages left on POP3 after --delete", user, len(left))
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
