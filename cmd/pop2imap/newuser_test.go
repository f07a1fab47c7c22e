package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/humanize"
	"github.com/spf13/pflag"
)

// rerunAdvice is the hint that only a failure a rerun can mend may carry.
const rerunAdvice = "rerun the same command to continue"

// TestAdviceFitsTheError: each mistake a rerun cannot mend exits 2 with
// advice that fits it, never "rerun the same command to continue". The
// servers are unreachable (port 1), so a case that got past the early
// checks would fail with a dial error and exit 1 instead.
func TestAdviceFitsTheError(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pass")
	os.WriteFile(empty, nil, 0o600)
	aFile := filepath.Join(dir, "a-file")
	os.WriteFile(aFile, []byte("x"), 0o600)
	conn := []string{"--pop3", "127.0.0.1:1", "--pop3-user", "a", "--imap", "127.0.0.1:1", "--imap-user", "b",
		"--pop3-tls", "none", "--imap-tls", "none"}
	migrate := append([]string{"migrate", "--progress", "never", "--state", filepath.Join(dir, "j")}, conn...)
	tests := []struct {
		name string
		args []string
		want string // in the one line, cause or hint
	}{
		{"missing password file", append(migrate, "--pop3-password-file", filepath.Join(dir, "nope")), "no such file"},
		{"empty password file", append(migrate, "--pop3-password-file", empty), "is empty"},
		{"--state is a directory", append(append([]string{"migrate", "--progress", "never"}, conn...), "--state", dir), "is a directory"},
		{"--state under a file", append(append([]string{"migrate", "--progress", "never"}, conn...), "--state", filepath.Join(aFile, "j")), "is not a directory"},
		{"--report into a missing directory", append(migrate, "--report", filepath.Join(dir, "missing", "r.json")), "create the directory first"},
		{"--report is a directory", append(migrate, "--report", dir), "is a directory"},
		{"negative --timeout", append(migrate, "--timeout", "-1s"), "--timeout must not be negative"},
		{"bridge --metrics-addr nonsense", append(append([]string{"bridge", "--once", "--state", filepath.Join(dir, "b")}, conn...), "--metrics-addr", "nonsense"), "want HOST:PORT"},
		{"bridge --state is a directory", append([]string{"bridge", "--once", "--state", dir}, conn...), "is a directory"},
		{"bridge --interval below the floor", append(append([]string{"bridge", "--check", "--state", filepath.Join(dir, "b")}, conn...), "--interval", "1s"), "below the floor of 30s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
			t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
			code, _, stderr := runCLI(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) || strings.Contains(stderr, rerunAdvice) {
				t.Errorf("stderr %q: want %q and not %q", stderr, tt.want, rerunAdvice)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
				t.Errorf("%d lines on stderr, want one: %q", n+1, stderr)
			}
		})
	}
}

// TestFailingSecretCommandIsConfig: a password or OAuth2 token command
// that fails or prints nothing is the user's to fix in every command: exit
// 2, and the advice is to run it by hand.
func TestFailingSecretCommandIsConfig(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	e := newCLIEnv(t)
	conn := e.args[1:]
	for _, cmd := range []string{"migrate", "verify", "bridge"} {
		for _, secret := range [][]string{
			{"--imap-password-cmd", "exit 3"},
			{"--imap-password-cmd", "true"},
			{"--imap-oauth2-token-cmd", "exit 3"},
			{"--pop3-oauth2-token-cmd", "true"},
		} {
			t.Run(cmd+" "+strings.Join(secret, " "), func(t *testing.T) {
				t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
				t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
				args := append([]string{cmd}, conn...)
				switch cmd {
				case "verify":
					// verify reads a journal but never makes one.
					args = dropFlag(dropFlag(args, "--progress"), "--state")
				case "bridge":
					args = append(dropFlag(args, "--progress"), "--once")
				}
				code, _, stderr := runCLI(t, append(args, secret...)...)
				if code != exitUsage || !strings.Contains(stderr, "run the password or token command by hand") {
					t.Errorf("exit %d, stderr %q; want exit 2 and advice to run the command by hand", code, stderr)
				}
			})
		}
	}
}

// dropFlag removes a flag and its value from args.
func dropFlag(args []string, flag string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == flag {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// TestLimitMessage: --limit -1 names --limit alone.
func TestLimitMessage(t *testing.T) {
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	code, _, stderr := runCLI(t, "migrate", "--pop3", "127.0.0.1:1", "--pop3-user", "a", "--imap", "127.0.0.1:1", "--imap-user", "b", "--limit", "-1")
	if code != exitUsage || !strings.Contains(stderr, "--limit") || strings.Contains(stderr, "--pop3-window") {
		t.Errorf("exit %d, stderr %q; want exit 2 naming --limit only", code, stderr)
	}
}

// TestBridgeOnceBrokenMetricsAddr: --once takes the metrics address too,
// so an address in use fails at once with exit 2 rather than being ignored.
func TestBridgeOnceBrokenMetricsAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := newBridgeEnv(t, 1)
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	code, _, stderr := runCLI(t, append(append([]string{"bridge", "--once"}, e.flags("INBOX")...), "--metrics-addr", ln.Addr().String())...)
	if code != exitUsage || !strings.Contains(stderr, "--metrics-addr") || strings.Contains(stderr, rerunAdvice) {
		t.Errorf("exit %d, stderr %q; want exit 2 about --metrics-addr", code, stderr)
	}
	if got := len(e.imap.Messages("INBOX")); got != 0 {
		t.Errorf("%d messages copied before the metrics address was checked", got)
	}
}

// TestBridgeIntervalFloor: an interval below the floor is refused in the
// file as on the command line, by --check and by a run alike; "0s" is
// refused by both too, rather than passing --check and running with 5m;
// --once needs no floor.
func TestBridgeIntervalFloor(t *testing.T) {
	e := newBridgeEnv(t, 0)
	cfg := filepath.Join(e.dir, "bridge.toml")
	for _, interval := range []string{"1ms", "0s", "29s"} {
		os.WriteFile(cfg, []byte("interval = \""+interval+"\"\n"+e.accountTOML("a", "A", "")), 0o600)
		for _, mode := range []string{"--check", "--verbose"} {
			t.Run(interval+" "+mode, func(t *testing.T) {
				// A run that got past the check would go on until
				// stopped: stop it after a while, and it exits 0.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				var stdout, stderrb bytes.Buffer
				code := run(ctx, []string{"bridge", "--config", cfg, mode}, &stdout, &stderrb)
				stderr := stderrb.String()
				if code != exitUsage || !strings.Contains(stderr, "below the floor") {
					t.Errorf("exit %d, stderr %q; want exit 2 about the floor", code, stderr)
				}
			})
		}
	}
	os.WriteFile(cfg, []byte("interval = \"1ms\"\n"+e.accountTOML("a", "A", "")), 0o600)
	if code, _, stderr := runCLI(t, "bridge", "--config", cfg, "--once"); code != exitOK {
		t.Errorf("--once with a short interval: exit %d, stderr %q", code, stderr)
	}
	os.WriteFile(cfg, []byte("interval = \"30s\"\n"+e.accountTOML("a", "A", "")), 0o600)
	if code, stdout, stderr := runCLI(t, "bridge", "--config", cfg, "--check"); code != exitOK || !strings.Contains(stdout, "interval 30s") {
		t.Errorf("30s: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestCheckOutsideTheService: --check where CREDENTIALS_DIRECTORY is not
// set reports the credential it cannot read as a warning, checks the
// rest, and exits 0; a mistake elsewhere still fails.
func TestCheckOutsideTheService(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bridge.toml")
	account := `[[account]]
name = "home"
journal = "` + filepath.Join(dir, "home.journal") + `"
  [account.pop3]
  server = "pop.example.com"
  user = "me"
  password = { credential = "pop3-home" }
  [account.imap]
  server = "imap.example.com"
  user = "me@example.com"
  password = { file = "${CREDENTIALS_DIRECTORY}/imap-home" }
`
	os.WriteFile(cfg, []byte(account), 0o600)
	code, stdout, stderr := runCLI(t, "bridge", "--config", cfg, "--check")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"home\n", `warning: account "home": pop3.password: `, `credential "pop3-home"`, `warning: account "home": imap.password:`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	os.WriteFile(cfg, []byte(strings.Replace(account, `server = "pop.example.com"`, `server = "pop.example.com"`+"\n  tls = \"sometimes\"", 1)), 0o600)
	if code, _, stderr := runCLI(t, "bridge", "--config", cfg, "--check"); code != exitUsage || !strings.Contains(stderr, "pop3.tls") {
		t.Errorf("a bad tls mode beside the credentials: exit %d, stderr %q", code, stderr)
	}
	// A run, unlike --check, needs its secrets.
	os.WriteFile(cfg, []byte(account), 0o600)
	if code, _, stderr := runCLI(t, "bridge", "--config", cfg, "--once"); code != exitUsage || !strings.Contains(stderr, "CREDENTIALS_DIRECTORY") {
		t.Errorf("a run without credentials: exit %d, stderr %q", code, stderr)
	}
}

// TestTLSToPlainPortNamesTheFixOnce: implicit TLS against a plain-text
// port names the flag that fixes it, and gives the port hint once.
func TestTLSToPlainPortNamesTheFixOnce(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	args := append(dropFlag(e.args, "--pop3-tls"), "--pop3-tls", "implicit")
	code, _, stderr := runCLI(t, args...)
	if code == exitOK || !strings.Contains(stderr, "--pop3-tls starttls") {
		t.Fatalf("exit %d, stderr %q; want a failure naming --pop3-tls starttls", code, stderr)
	}
	line := stderr[strings.LastIndex(strings.TrimSpace(stderr), "\n")+1:]
	if n := strings.Count(line, "995"); n != 1 {
		t.Errorf("the port hint appears %d times: %q", n, line)
	}
	if strings.Contains(line, rerunAdvice) {
		t.Errorf("%q advises a rerun", line)
	}
}

// TestSummaryOnlyWhenSomethingHappened: a run that fails before copying
// anything prints no zero-filled Summary; a dry run with --delete says how
// many messages and bytes it would delete, and the bytes it would copy.
func TestSummaryOnlyWhenSomethingHappened(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("POP2IMAP_POP3_PASSWORD", "wrong")
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	code, stdout, _ := runCLI(t, e.args...)
	if code != exitError || strings.Contains(stdout, "Summary") {
		t.Errorf("failed login: exit %d, stdout %q; want exit 1 and no summary", code, stdout)
	}
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	code, stdout, stderr := runCLI(t, append(e.args, "--dry-run", "--delete")...)
	if code != exitOK {
		t.Fatalf("dry run: exit %d: %s", code, stderr)
	}
	var total int64
	for _, m := range e.pop.Messages() {
		total += int64(len(m.Data))
	}
	for _, want := range []string{fmt.Sprintf("Would delete:  %d (%s)", e.samples, humanize.Bytes(total)), "Bytes to copy: " + humanize.Bytes(total)} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run summary lacks %q:\n%s", want, stdout)
		}
	}
}

// TestProgressText: the bar measures bytes; messages are text beside it,
// with the time left once it can be estimated.
func TestProgressText(t *testing.T) {
	if got, want := progressText(366, 2000, 25, 100, 30*time.Second), "366 of 2000 messages, about 1m30s left"; got != want {
		t.Errorf("progressText = %q, want %q", got, want)
	}
	if got, want := progressText(0, 2000, 0, 100, 0), "0 of 2000 messages"; got != want {
		t.Errorf("progressText at the start = %q, want %q", got, want)
	}
}

// TestVerifyFlags: verify takes --report, --progress and --log-format as
// migrate does, shares its --pop3-window default, and its help does not
// claim that it creates the folder.
func TestVerifyFlags(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	report := filepath.Join(e.dir, "verify.json")
	args := append([]string{"verify"}, dropFlag(dropFlag(e.args[1:], "--progress"), "--state")...)
	code, _, stderr := runCLI(t, append(args, "--report", report, "--progress", "never", "--log-format", "json")...)
	if code != exitError {
		t.Fatalf("verify before migrating: exit %d, want 1: %s", code, stderr)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Checked, Missing int
		NotIdentical     []struct{ Mark, UIDL string } `json:"not_identical"`
		ExitCode         int                           `json:"exit_code"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Checked != e.samples || rep.Missing != e.samples || len(rep.NotIdentical) != e.samples || rep.ExitCode != exitError {
		t.Errorf("report: %+v; want %d checked, all missing, exit 1", rep, e.samples)
	}
	if code, _, stderr := runCLI(t, append(args, "--report", filepath.Join(e.dir, "no", "r.json"))...); code != exitUsage {
		t.Errorf("--report into a missing directory: exit %d, want 2: %s", code, stderr)
	}
	if code, _, _ := runCLI(t, append(args, "--log-format", "xml")...); code != exitUsage {
		t.Errorf("--log-format xml: exit %d, want 2", code)
	}

	var help bytes.Buffer
	var o verifyOptions
	fs := pflag.NewFlagSet("verify", pflag.ContinueOnError)
	fs.SetOutput(&help)
	o.AddFlags(fs)
	fs.PrintDefaults()
	if strings.Contains(help.String(), "created if missing") {
		t.Errorf("verify --help says the folder is created:\n%s", help.String())
	}
	if o.Window != bridge.DefaultWindow {
		t.Errorf("verify --pop3-window defaults to %d, migrate to %d", o.Window, bridge.DefaultWindow)
	}
}

// TestNoOrphanJournal: a mistyped password or folder fails without leaving
// a journal or lock file in the state directory.
func TestNoOrphanJournal(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", "wrong")
	state := filepath.Join(e.dir, "state", "j")
	args := append(dropFlag(e.args, "--state"), "--state", state)
	if code, _, _ := runCLI(t, args...); code != exitError {
		t.Fatalf("wrong IMAP password: exit %d, want 1", code)
	}
	if entries, _ := os.ReadDir(filepath.Dir(state)); len(entries) != 0 {
		t.Errorf("a failed login left %d files in the state directory", len(entries))
	}
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	if code, _, stderr := runCLI(t, args...); code != exitOK {
		t.Fatalf("right password: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("no journal after a successful run: %v", err)
	}
}

// TestAPOPWithoutAPOP: --pop3-auth apop against a server whose greeting
// offers no APOP is the user's to change: exit 2, and no advice to rerun.
func TestAPOPWithoutAPOP(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	code, _, stderr := runCLI(t, append(e.args, "--pop3-auth", "apop")...)
	if code != exitUsage || !strings.Contains(stderr, "--pop3-auth") || strings.Contains(stderr, rerunAdvice) {
		t.Errorf("exit %d, stderr %q; want exit 2 naming --pop3-auth without advising a rerun", code, stderr)
	}
}
