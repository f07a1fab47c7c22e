package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/secret"
	"github.com/pop2imap/pop2imap/internal/testcert"
)

// writeConfig writes text as a config file in a fresh directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bridge.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeCA writes a fresh CA certificate as PEM.
func writeCA(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, testcert.New(t).PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestExampleConfig loads deploy/bridge.example.toml as systemd would hand
// it over (credentials in CREDENTIALS_DIRECTORY), so the shipped example
// cannot rot.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../../deploy/bridge.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	os.Mkdir(creds, 0o700)
	for name, secret := range map[string]string{"old-isp-pop3": "p1", "gmail-app-password": "p2", "family-pop3": "p3\n", "family-imap": "p4"} {
		os.WriteFile(filepath.Join(creds, name), []byte(secret), 0o600)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	ca := filepath.Join(dir, "ca.pem")
	writeCA(t, ca)
	path := writeConfig(t, strings.ReplaceAll(string(data), "/etc/pop2imap/private-ca.pem", ca))

	cfg, err := LoadConfig(path, Defaults{Interval: time.Hour, MaxBackoff: time.Hour, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Accounts) != 2 {
		t.Fatalf("%d accounts, want 2", len(cfg.Accounts))
	}
	isp, family := cfg.Accounts[0], cfg.Accounts[1]
	checks := []struct {
		what      string
		got, want any
	}{
		{"isp name", isp.Name, "old-isp"},
		{"isp pop3", isp.POP3.Addr, "pop.old-isp.example:995"},
		{"isp imap", isp.IMAP.Addr, "imap.gmail.com:993"},
		{"isp folder", isp.Bridge.Folder, "Old ISP"},
		{"isp delete", isp.DeletePolicy(), "after 7d"},
		{"isp interval (file beats flag)", isp.Policy.Interval, 5 * time.Minute},
		{"isp timeout", isp.POP3.Timeout, time.Minute},
		{"isp journal", filepath.Dir(isp.Journal), filepath.Join(dir, "state", "pop2imap")},
		{"family pop3", family.POP3.Addr, "mail.example.org:110"},
		{"family tls", family.POP3.TLS, bridge.TLSStartTLS},
		{"family delete", family.DeletePolicy(), "now"},
		{"family interval (account beats file)", family.Policy.Interval, 2 * time.Minute},
		{"family roots", family.IMAP.TLSConfig.RootCAs != nil, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	for _, a := range cfg.Accounts {
		for _, ep := range []*bridge.Endpoint{a.POP3, a.IMAP} {
			if s, err := ep.Secret(context.Background()); err != nil || !strings.HasPrefix(s, "p") || strings.Contains(s, "\n") {
				t.Errorf("%s %s: secret %q, %v", a.Name, ep.Addr, s, err)
			}
		}
	}
	again, err := LoadConfig(path, Defaults{Interval: time.Hour, MaxBackoff: time.Hour, Timeout: time.Second})
	if err != nil || again.Accounts[0].Fingerprint != isp.Fingerprint {
		t.Error("loading the same file twice gives a different fingerprint: a reload would restart every account")
	}
}

const minimalAccount = `
[[account]]
name = "a"
  [account.pop3]
  server = "127.0.0.1:1110"
  user = "u"
  tls = "none"
  password = { env = "TEST_POP3_PASSWORD" }
  [account.imap]
  server = "127.0.0.1:1143"
  user = "v"
  tls = "none"
  password = { env = "TEST_IMAP_PASSWORD" }
`

// TestConfigErrors: each mistake in the file is refused at load with the
// file, the account and the key, and a literal password never appears in
// the message.
func TestConfigErrors(t *testing.T) {
	t.Setenv("TEST_POP3_PASSWORD", "x")
	t.Setenv("TEST_IMAP_PASSWORD", "y")
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	replace := func(old, new string) string { return strings.Replace(minimalAccount, old, new, 1) }
	tests := []struct {
		name, text, want string
	}{
		{"literal password", replace(`{ env = "TEST_POP3_PASSWORD" }`, `"hunter2-literal"`), "pop3.password: a literal password is not allowed"},
		{"two sources", replace(`{ env = "TEST_POP3_PASSWORD" }`, `{ env = "A", file = "/b" }`), "exactly one of"},
		{"unknown source", replace(`{ env = "TEST_POP3_PASSWORD" }`, `{ vault = "x" }`), "unknown secret source"},
		{"no password", replace(`password = { env = "TEST_POP3_PASSWORD" }`, ``), "pop3.password: missing"},
		{"unset env", replace(`TEST_POP3_PASSWORD`, `TEST_UNSET_VARIABLE`), "TEST_UNSET_VARIABLE is not set"},
		{"credential outside systemd", replace(`{ env = "TEST_POP3_PASSWORD" }`, `{ credential = "x" }`), "CREDENTIALS_DIRECTORY is not set"},
		{"file with unset variable", replace(`{ env = "TEST_POP3_PASSWORD" }`, `{ file = "${CREDENTIALS_DIRECTORY}/x" }`), "CREDENTIALS_DIRECTORY is not set"},
		{"missing file", replace(`{ env = "TEST_POP3_PASSWORD" }`, `{ file = "/nonexistent/pass" }`), "no such file"},
		{"unknown key", replace(`user = "u"`, `user = "u"`+"\n  usr = \"typo\""), `unknown key "account.pop3.usr"`},
		{"bad delete", replace(`name = "a"`, `name = "a"`+"\ndelete = \"sometimes\""), `delete = "sometimes"`},
		{"bad duration", replace(`name = "a"`, `name = "a"`+"\ninterval = \"5 minutes\""), "invalid duration"},
		{"bad tls", replace(`tls = "none"`, `tls = "maybe"`), "pop3.tls"},
		{"bad auth", replace(`tls = "none"`, `tls = "none"`+"\n  auth = \"kerberos\""), "pop3.auth"},
		{"no server", replace(`server = "127.0.0.1:1110"`, ``), "pop3.server is missing"},
		{"no name", replace(`name = "a"`, ``), `account "#1": name = ""`},
		{"bad name", replace(`name = "a"`, `name = "a b"`), `name = "a b"`},
		{"plaintext to a remote host", replace(`server = "127.0.0.1:1143"`, `server = "imap.example.com"`), "allow_insecure_auth"},
		{"duplicate name", minimalAccount + strings.Replace(minimalAccount, "1110", "2110", 1), "another account has the same name"},
		{"shared journal", minimalAccount + strings.Replace(minimalAccount, `"a"`, `"b"`, 1), "shares its journal"},
		{"no accounts", `interval = "5m"`, "no [[account]]"},
		{"syntax", "[[account]\nname = 1", "line "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tt.text), Defaults{})
			if err == nil {
				t.Fatalf("loaded; want an error mentioning %q", tt.want)
			}
			var cerr *ConfigError
			if !errors.As(err, &cerr) {
				t.Errorf("%T is not a *ConfigError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error repeats the literal password: %q", err)
			}
		})
	}
}

// TestSecretSources: files and credentials are read again at every login,
// so a rotated password needs no restart; commands run at every login.
func TestSecretSources(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	cred := filepath.Join(dir, "imap")
	os.WriteFile(cred, []byte("first\r\nignored"), 0o600)
	os.WriteFile(filepath.Join(dir, "pop3"), []byte("from-file\n"), 0o600)
	counter := filepath.Join(dir, "count")
	text := strings.NewReplacer(
		`{ env = "TEST_POP3_PASSWORD" }`, `{ file = "${CREDENTIALS_DIRECTORY}/pop3" }`,
		`{ env = "TEST_IMAP_PASSWORD" }`, `{ credential = "imap" }`,
	).Replace(minimalAccount)
	cfg, err := LoadConfig(writeConfig(t, text), Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Accounts[0]
	ctx := context.Background()
	if s, _ := a.POP3.Secret(ctx); s != "from-file" {
		t.Errorf("file secret %q", s)
	}
	if s, _ := a.IMAP.Secret(ctx); s != "first" {
		t.Errorf("credential %q", s)
	}
	os.WriteFile(cred, []byte("rotated\n"), 0o600)
	if s, _ := a.IMAP.Secret(ctx); s != "rotated" {
		t.Errorf("after rotation: %q", s)
	}

	text = strings.Replace(minimalAccount, `{ env = "TEST_POP3_PASSWORD" }`,
		`{ command = "echo run >> `+counter+`; echo from-command" }`, 1)
	t.Setenv("TEST_POP3_PASSWORD", "")
	t.Setenv("TEST_IMAP_PASSWORD", "y")
	cfg, err = LoadConfig(writeConfig(t, text), Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if s, err := cfg.Accounts[0].POP3.Secret(ctx); s != "from-command" || err != nil {
			t.Fatalf("command secret %q, %v", s, err)
		}
	}
	if b, _ := os.ReadFile(counter); strings.Count(string(b), "run") != 2 {
		t.Errorf("the command ran %d times for 2 logins", strings.Count(string(b), "run"))
	}
}

// TestConfigDefaults: flags give defaults, the file's top level overrides
// them, and relative journal paths are relative to the file.
func TestConfigDefaults(t *testing.T) {
	t.Setenv("TEST_POP3_PASSWORD", "x")
	t.Setenv("TEST_IMAP_PASSWORD", "y")
	text := strings.Replace(minimalAccount, `name = "a"`, `name = "a"`+"\njournal = \"state/a.journal\"\ndelete = \"1d12h\"", 1)
	path := writeConfig(t, `max_backoff = "2h"`+"\n"+text)
	cfg, err := LoadConfig(path, Defaults{Interval: 20 * time.Second, MaxBackoff: time.Hour, Timeout: 5 * time.Second, Baseline: true, MaxMessageSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Accounts[0]
	if a.Bridge.MaxMessageSize != 1<<20 {
		t.Errorf("max message size %d, want the default given, 1 MiB", a.Bridge.MaxMessageSize)
	}
	if a.Policy.Interval != 20*time.Second || a.Policy.MaxBackoff != 2*time.Hour || a.IMAP.Timeout != 5*time.Second || !a.Baseline {
		t.Errorf("interval %v, max backoff %v, timeout %v, baseline %v", a.Policy.Interval, a.Policy.MaxBackoff, a.IMAP.Timeout, a.Baseline)
	}
	if want := filepath.Join(filepath.Dir(path), "state", "a.journal"); a.Journal != want {
		t.Errorf("journal %s, want %s", a.Journal, want)
	}
	if a.Bridge.DeleteAfter != 36*time.Hour || a.Bridge.Delete || a.Bridge.Folder != "INBOX" {
		t.Errorf("delete after %v, delete %v, folder %q", a.Bridge.DeleteAfter, a.Bridge.Delete, a.Bridge.Folder)
	}
}

// TestConfigFilePermissions: a config file others can write is refused,
// since whoever writes it runs commands as the bridge; so is a password file
// others can read. Both errors name the file and the chmod that fixes it.
func TestConfigFilePermissions(t *testing.T) {
	t.Setenv("TEST_POP3_PASSWORD", "x")
	t.Setenv("TEST_IMAP_PASSWORD", "y")
	path := writeConfig(t, minimalAccount)
	os.Chmod(path, 0o664)
	_, err := LoadConfig(path, Defaults{})
	var perr *secret.PermissionError
	if !errors.As(err, &perr) || !strings.Contains(err.Error(), "chmod go-w "+path) {
		t.Fatalf("group-writable config: got %v; want a *secret.PermissionError naming chmod go-w %s", err, path)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadConfig(path, Defaults{}); err != nil {
		t.Fatalf("mode 0644: %v", err)
	}

	pass := filepath.Join(t.TempDir(), "pop3.pass")
	os.WriteFile(pass, []byte("pw\n"), 0o644)
	path = writeConfig(t, strings.Replace(minimalAccount, `{ env = "TEST_POP3_PASSWORD" }`, `{ file = "`+pass+`" }`, 1))
	_, err = LoadConfig(path, Defaults{})
	if !errors.As(err, &perr) || perr.Path != pass || !strings.Contains(err.Error(), "chmod go-rwx "+pass) {
		t.Fatalf("world-readable password file: got %v; want a *secret.PermissionError for %s", err, pass)
	}
	var cerr *ConfigError
	if !errors.As(err, &cerr) {
		t.Errorf("%T is not a *ConfigError", err)
	}
}
