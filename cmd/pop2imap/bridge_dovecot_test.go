package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/dovecottest"
)

// dovecotMail returns n messages that Dovecot serves back byte for byte
// (CRLF line endings), numbered from first.
func dovecotMail(first, n int) [][]byte {
	var out [][]byte
	for i := first; i < first+n; i++ {
		var b bytes.Buffer
		fmt.Fprintf(&b, "From: sender@example.org\r\nTo: old@example.org\r\nSubject: bridged %d\r\n", i)
		fmt.Fprintf(&b, "Date: Mon, 2 Jan 2006 15:04:%02d +0000\r\nMessage-ID: <bridge-%d@example.org>\r\n\r\n", i%60, i)
		fmt.Fprintf(&b, "body of %d\r\n.\r\n..two dots\r\n", i)
		out = append(out, b.Bytes())
	}
	return out
}

// dovecotBridgeConfig writes a config file for one account from src's
// POP3 (STARTTLS) into dst's "From POP3" folder (implicit TLS), passwords
// from a file and from the environment.
func dovecotBridgeConfig(t *testing.T, d *dovecottest.Server, src, dst, interval, extra string) string {
	t.Helper()
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pop3.pass")
	os.WriteFile(passFile, []byte("pop-pass-"+src+"\n"), 0o600)
	t.Setenv("TEST_DOVECOT_IMAP_PASSWORD", "imap-pass-"+dst)
	cfg := filepath.Join(dir, "bridge.toml")
	text := fmt.Sprintf(`interval = %q

[[account]]
name = "dovecot"
folder = "From POP3"
journal = "dovecot.journal"
%s
  [account.pop3]
  server = %q
  user = %q
  tls = "starttls"
  ca_file = %q
  password = { file = %q }

  [account.imap]
  server = %q
  user = %q
  tls = "implicit"
  ca_file = %q
  password = { env = "TEST_DOVECOT_IMAP_PASSWORD" }
`, interval, extra, d.POP3Addr, src, d.CAFile, passFile, d.IMAPSAddr, dst, d.CAFile)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestDovecotBridge runs the bridge against a real Dovecot for a few
// cycles, with mail seeded into the POP3 maildrop between them: each
// message reaches the IMAP folder byte for byte and exactly once, --delete
// empties the maildrop, the metrics count it, the stop is clean, and a
// restart copies nothing again.
func TestDovecotBridge(t *testing.T) {
	allowShortIntervals(t)
	d := dovecottest.Start(t)
	d.AddUser(t, "bsrc", "pop-pass-bsrc")
	d.AddUser(t, "bdst", "imap-pass-bdst")
	cfg := dovecotBridgeConfig(t, d, "bsrc", "bdst", "50ms", `delete = "now"`)

	var seeded [][]byte
	seed := func(msgs [][]byte) {
		d.SeedMaildrop(t, "bsrc", msgs)
		seeded = append(seeded, msgs...)
	}
	seed(dovecotMail(1, 3))
	logs := newLogWatch()
	stop := startBridge(t, logs, "--config", cfg, "--metrics-addr", "127.0.0.1:0")
	line, next := logs.waitFor(t, 0, `msg="serving metrics"`)
	addr := metricsAddrRE.FindStringSubmatch(line)[1]
	next = logs.waitForCycles(t, next, "dovecot", map[string]int{"appended": 3, "deleted": 3})
	for i, n := range []int{2, 1, 4} {
		seed(dovecotMail(len(seeded)+1, n))
		next = logs.waitForCycles(t, next, "dovecot", map[string]int{"appended": n, "deleted": n})
		t.Logf("round %d: %d messages forwarded", i+2, n)
	}
	_, metrics := httpGet(t, "http://"+addr+"/metrics")
	if want := `pop2imap_bridge_messages_forwarded_total{account="dovecot"} 10`; !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %q", want)
	}
	if code, body := httpGet(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("healthz %d %q", code, body)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("exit %d, want 0\n%s", code, logs)
	}

	got := d.FetchAll(t, "bdst", "imap-pass-bdst", "From POP3")
	if missing, extra := sameMultiset(got, seeded); missing != 0 || extra != 0 {
		t.Fatalf("%d messages in the folder for %d seeded: %d missing or altered, %d extra", len(got), len(seeded), missing, extra)
	}
	if left := d.RetrAll(t, "bsrc", "pop-pass-bsrc"); len(left) != 0 {
		t.Errorf("the POP3 maildrop still holds %d messages", len(left))
	}
	code, _, stderr := runCLI(t, "bridge", "--config", cfg, "--once")
	if code != exitOK || !strings.Contains(stderr, "appended=0") {
		t.Fatalf("restart: exit %d, want nothing appended\n%s", code, stderr)
	}
	if got := d.FetchAll(t, "bdst", "imap-pass-bdst", "From POP3"); len(got) != len(seeded) {
		t.Errorf("the restart changed the folder: %d messages, want %d", len(got), len(seeded))
	}
}

// TestDovecotBridgeLive is the by-hand demonstration: the built binary with
// a 30s interval (the bridge's floor), real signals, and curl on the
// metrics. Its arrival-time check depends on the machine's load, so CI
// relies on TestArrivalWithinOneInterval in internal/daemon, which checks
// the same on a fake clock. It runs only with POP2IMAP_BRIDGE_LIVE=1; run it
// with -v to see the log and the metrics:
//
//	POP2IMAP_BRIDGE_LIVE=1 go test -v -run TestDovecotBridgeLive ./cmd/pop2imap
func TestDovecotBridgeLive(t *testing.T) {
	if os.Getenv("POP2IMAP_BRIDGE_LIVE") != "1" {
		t.Skip("set POP2IMAP_BRIDGE_LIVE=1 to run the live demonstration")
	}
	const interval = 30 * time.Second // the floor the bridge allows
	d := dovecottest.Start(t)
	d.AddUser(t, "lsrc", "pop-pass-lsrc")
	d.AddUser(t, "ldst", "imap-pass-ldst")
	cfg := dovecotBridgeConfig(t, d, "lsrc", "ldst", "30s", `delete = "7d"`)
	bin := buildBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()

	d.SeedMaildrop(t, "lsrc", dovecotMail(1, 2))
	logs := newLogWatch()
	cmd := exec.Command(bin, "bridge", "--config", cfg, "--metrics-addr", metricsAddr)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	next := logs.waitForCycles(t, 0, "dovecot", map[string]int{"appended": 2})

	// Drop one message into the maildrop and time its arrival in IMAP.
	seededAt := time.Now()
	d.SeedMaildrop(t, "lsrc", dovecotMail(3, 1))
	var arrived time.Duration
	for arrived == 0 {
		if len(d.FetchAll(t, "ldst", "imap-pass-ldst", "From POP3")) == 3 {
			arrived = time.Since(seededAt)
		} else if time.Since(seededAt) > 3*interval {
			t.Fatalf("the message did not arrive within 3 intervals\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("seeded at %s, in the IMAP folder %v later (interval %v)", seededAt.Format("15:04:05.000"), arrived.Round(time.Millisecond), interval)
	if arrived > interval+interval/10+2*time.Second {
		t.Errorf("arrival took %v, more than one interval", arrived)
	}
	next = logs.waitForCycles(t, next, "dovecot", map[string]int{"appended": 1})

	for _, path := range []string{"/metrics", "/healthz"} {
		out, err := exec.Command("curl", "-sS", "-i", "http://"+metricsAddr+path).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", path, err, out)
		}
		var keep []string
		for _, l := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(l, "go_") && !strings.HasPrefix(l, "process_") && !strings.HasPrefix(l, "# HELP go_") &&
				!strings.HasPrefix(l, "# TYPE go_") && !strings.HasPrefix(l, "# HELP process_") && !strings.HasPrefix(l, "# TYPE process_") {
				keep = append(keep, l)
			}
		}
		t.Logf("$ curl -sS -i http://%s%s\n%s", metricsAddr, path, strings.Join(keep, "\n"))
	}

	cmd.Process.Signal(syscall.SIGHUP)
	_, next = logs.waitFor(t, next, `msg=reloading`)
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	t.Logf("exit after SIGTERM: %v (code %d)\n--- log ---\n%s", err, cmd.ProcessState.ExitCode(), logs)
	if cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", cmd.ProcessState.ExitCode())
	}
}
