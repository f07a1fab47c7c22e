package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/state"
)

// TestBridgeUsageErrors: each mistake on the bridge's command line gets
// exit code 2 and a line that names it.
func TestBridgeUsageErrors(t *testing.T) {
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	base := []string{"bridge", "--pop3", "127.0.0.1:1", "--pop3-user", "a", "--imap", "127.0.0.1:1", "--imap-user", "b"}
	cfg := filepath.Join(t.TempDir(), "bridge.toml")
	os.WriteFile(cfg, []byte(`[[account]]
name = "x"
  [account.pop3]
  server = "127.0.0.1:1"
  user = "a"
  password = "hunter2"
`), 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"delete and keep", append(base, "--delete", "--keep"), "exclude each other"},
		{"delete and delete-after", append(base, "--delete", "--delete-after", "7d"), "exclude each other"},
		{"bad delete-after", append(base, "--delete-after", "a week"), "invalid duration"},
		{"zero interval", append(base, "--interval", "0s"), "--interval must be positive"},
		{"bad log format", append(base, "--log-format", "xml"), "--log-format"},
		{"missing --pop3", []string{"bridge", "--pop3-user", "a", "--imap", "x", "--imap-user", "b"}, "missing --pop3"},
		{"password as argument", append(base, "hunter2"), "passwords are never given on the command line"},
		{"--pop3 beside --config", []string{"bridge", "--config", cfg, "--pop3", "x"}, "--pop3 cannot be combined with --config"},
		{"--delete beside --config", []string{"bridge", "--config", cfg, "--delete"}, "--delete cannot be combined with --config"},
		{"literal password in the file", []string{"bridge", "--config", cfg}, "a literal password is not allowed"},
		{"missing file", []string{"bridge", "--config", "/nonexistent/bridge.toml"}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, exitUsage, tt.want)
			}
			if strings.Contains(tt.name, "literal") && strings.Contains(stderr, "hunter2") {
				t.Error("stderr repeats the literal password")
			}
		})
	}
}

// TestBridgeForwardsNewMail runs the bridge with a 20ms interval: it copies
// what is there, then each message injected later, exactly once; the
// metrics and /healthz on 127.0.0.1 show it; cancelling (SIGTERM) exits 0.
func TestBridgeForwardsNewMail(t *testing.T) {
	allowShortIntervals(t)
	e := newBridgeEnv(t, 3)
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	logs := newLogWatch()
	stop := startBridge(t, logs, append(e.flags("Bridged"), "--interval", "20ms", "--metrics-addr", "127.0.0.1:0", "--delete")...)

	line, next := logs.waitFor(t, 0, `msg="serving metrics"`)
	addr := metricsAddrRE.FindStringSubmatch(line)[1]
	next = logs.waitForCycles(t, next, "default", map[string]int{"appended": 3, "deleted": 3})
	for round := 1; round <= 3; round++ {
		e.deliver(round)
		next = logs.waitForCycles(t, next, "default", map[string]int{"appended": round, "deleted": round})
	}
	e.assertOnce("Bridged")
	_, next = logs.waitFor(t, next, `msg="cycle done"`, "appended=0", "deleted=0", "next_in=")
	if n := len(e.pop.Messages()); n != 0 {
		t.Errorf("--delete left %d messages on the POP3 server", n)
	}

	if code, body := httpGet(t, "http://"+addr+"/healthz"); code != 200 || !strings.HasPrefix(body, "ok") {
		t.Errorf("healthz: %d %q", code, body)
	}
	_, metrics := httpGet(t, "http://"+addr+"/metrics")
	for _, want := range []string{
		`pop2imap_bridge_messages_forwarded_total{account="default"} 9`,
		`pop2imap_bridge_messages_deleted_total{account="default"} 9`,
		`pop2imap_bridge_backoff_seconds{account="default"} 0`,
		`pop2imap_bridge_last_success_timestamp_seconds{account="default"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if code := stop(); code != exitOK {
		t.Fatalf("exit %d after cancel, want 0; log:\n%s", code, logs)
	}
	logs.waitFor(t, next, `msg="bridge stopped"`)
	for _, secret := range []string{testPOP3Pass, testIMAPPass} {
		if strings.Contains(logs.String(), secret) || strings.Contains(metrics, secret) {
			t.Error("a password appears in the log or the metrics")
		}
	}
}

// TestBridgeSIGTERMMidMessage: the signal arrives while a message is being
// retrieved. The bridge finishes it, records it, exits 0; a restart copies
// the rest and nothing twice.
func TestBridgeSIGTERMMidMessage(t *testing.T) {
	allowShortIntervals(t)
	e := newBridgeEnv(t, 6)
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.pop.SetFault(pop3test.Fault{Command: "RETR", Arg: "3", Hook: cancel})
	logs := newLogWatch()
	args := append([]string{"bridge"}, append(e.flags("Inbox2"), "--interval", "20ms")...)
	if code := run(ctx, args, &strings.Builder{}, logs); code != exitOK {
		t.Fatalf("exit %d after SIGTERM, want 0; log:\n%s", code, logs)
	}
	logs.waitFor(t, 0, `msg="cycle interrupted; stopping"`)
	got := e.imap.Messages("Inbox2")
	if len(got) < 3 {
		t.Fatalf("%d messages copied; the message in hand (number 3) was not finished", len(got))
	}
	if missing, extra := sameMultiset(got, e.sent[:len(got)]); missing != 0 || extra != 0 {
		t.Fatalf("after the signal: %d missing or altered, %d extra", missing, extra)
	}
	j, err := state.Open(filepath.Join(e.dir, "journal-Inbox2"))
	if err != nil {
		t.Fatal(err)
	}
	es, err := j.Entries()
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range es {
		if en.Step != state.Appended {
			t.Errorf("journal entry %s at %s, want every retrieved message recorded appended", en.UIDL, en.Step)
		}
	}
	if len(es) != len(got) {
		t.Errorf("journal has %d entries for %d messages copied", len(es), len(got))
	}
	j.Close()

	e.pop.SetFault(pop3test.Fault{})
	code, _, stderr := runCLI(t, append(args, "--once")...)
	if code != exitOK {
		t.Fatalf("restart: exit %d\n%s", code, stderr)
	}
	e.assertOnce("Inbox2")
}

// TestBridgeReload: SIGHUP re-reads the file. A broken file is logged and
// the running accounts go on; a good one starts the new account and leaves
// the unchanged one alone. One account with a wrong password runs beside
// a healthy one all along.
func TestBridgeReload(t *testing.T) {
	allowShortIntervals(t)
	a, b := newBridgeEnv(t, 2), newBridgeEnv(t, 1)
	broken := strings.Replace(b.accountTOML("broken", "X", ""), filepath.Join(b.dir, "pop3.pass"), filepath.Join(b.dir, "imap.pass"), 1)
	cfg := filepath.Join(t.TempDir(), "bridge.toml")
	write := func(text string) {
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`interval = "20ms"` + "\n" + a.accountTOML("a", "A", "") + broken)

	o, err := parseBridgeFlags([]string{"--config", cfg}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	hup := make(chan os.Signal, 1)
	logs := newLogWatch()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runBridge(ctx, o, hup, &strings.Builder{}, logs) }()
	stopped := false
	stop := func() error { stopped = true; cancel(); return <-done }
	defer func() {
		if !stopped {
			stop()
		}
	}()

	next := logs.waitForCycles(t, 0, "a", map[string]int{"appended": 2})
	logs.waitFor(t, 0, "account=broken", "kind=auth")

	write("this is not TOML [")
	hup <- syscall.SIGHUP
	_, next = logs.waitFor(t, next, `msg="reload failed; the running configuration stays"`)
	a.deliver(1)
	_, next = logs.waitFor(t, next, `msg="cycle done"`, "account=a", "appended=1")

	write(`interval = "20ms"` + "\n" + a.accountTOML("a", "A", "") + broken + b.accountTOML("b", "B", `delete = "now"`))
	hup <- syscall.SIGHUP
	_, next = logs.waitFor(t, next, `msg=reloading`, "accounts=3")
	logs.waitFor(t, next, `msg="cycle done"`, "account=b", "appended=1", "deleted=1")
	a.deliver(1)
	logs.waitFor(t, next, `msg="cycle done"`, "account=a", "appended=1")

	if err := stop(); err != nil {
		t.Fatalf("runBridge: %v", err)
	}
	if n := strings.Count(logs.String(), `msg="account started" account=a`); n != 1 {
		t.Errorf("account a started %d times; an unchanged account must keep running across a reload", n)
	}
	a.assertOnce("A")
	b.assertOnce("B")
}

// TestBridgeOnce: --once runs one cycle per account and exits with the
// usual codes: 0, or 1 with the account named when one failed.
func TestBridgeOnce(t *testing.T) {
	e := newBridgeEnv(t, 2)
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	code, _, stderr := runCLI(t, append(append([]string{"bridge"}, e.flags("Once")...), "--once")...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	e.assertOnce("Once")
	t.Setenv("POP2IMAP_IMAP_PASSWORD", "wrong")
	code, _, stderr = runCLI(t, append(append([]string{"bridge"}, e.flags("Once")...), "--once")...)
	if code != exitError || !strings.Contains(stderr, `account "default"`) || !strings.Contains(stderr, "IMAP password") {
		t.Errorf("wrong password: exit %d, stderr %q", code, stderr)
	}
}

// TestBridgeCheck: --check prints the accounts as resolved and connects to
// nothing.
func TestBridgeCheck(t *testing.T) {
	e := newBridgeEnv(t, 0)
	cfg := filepath.Join(t.TempDir(), "bridge.toml")
	os.WriteFile(cfg, []byte(e.accountTOML("home", "Home", `delete = "7d"`)), 0o600)
	code, stdout, stderr := runCLI(t, "bridge", "--config", cfg, "--check")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"home\n", "alice@" + e.pop.Addr(), `folder "Home"`, "delete   after 7d", "interval 5m0s"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--check output lacks %q:\n%s", want, stdout)
		}
	}
	if len(e.pop.Log()) != 0 {
		t.Error("--check connected to the POP3 server")
	}
}
