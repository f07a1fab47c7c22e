package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/secret"
	"github.com/pop2imap/pop2imap/state"
)

// Account is one POP3 mailbox bridged into one IMAP folder, resolved and
// checked: what an account loop needs and nothing it must look up again.
type Account struct {
	// Name identifies the account in logs, metrics and the health check.
	Name       string
	POP3, IMAP *bridge.Endpoint
	// Bridge is the pipeline's configuration. The loop sets Retries,
	// Baseline and Now itself.
	Bridge bridge.Config
	// Journal is the path of the account's journal.
	Journal string
	// Baseline asks for the mail on the server at the first cycle to be
	// recorded as done without copying, when the journal has no entries.
	Baseline bool
	Policy   Policy
	// Fingerprint identifies the settings the account was built from, so
	// that a reload leaves an unchanged account running. Empty means the
	// account is always restarted.
	Fingerprint string
}

// DeletePolicy describes the account's delete policy for logs: "keep",
// "now" or "after 7d".
func (a *Account) DeletePolicy() string {
	switch {
	case a.Bridge.Delete:
		return "now"
	case a.Bridge.DeleteAfter > 0:
		return "after " + FormatDuration(a.Bridge.DeleteAfter)
	}
	return "keep"
}

// ParseDeletePolicy reads a delete policy: "keep" (the default when s is
// empty), "now", or a duration after which a copied message is deleted.
func ParseDeletePolicy(s string) (deleteNow bool, after time.Duration, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "keep", "never":
		return false, 0, nil
	case "now", "immediately":
		return true, 0, nil
	}
	d, err := ParseDuration(strings.TrimPrefix(strings.TrimSpace(s), "after "))
	if err != nil || d <= 0 {
		return false, 0, fmt.Errorf("delete = %q: want keep, now, or a duration such as 7d", s)
	}
	return false, d, nil
}

// Defaults are the settings the command line gives; the file's top-level
// keys override them, and an account's own keys override those.
type Defaults struct {
	Interval   time.Duration
	MaxBackoff time.Duration
	Timeout    time.Duration
	// Baseline applies --baseline to every account.
	Baseline bool
	// MinInterval is the shortest interval an account may have; a shorter
	// one is refused, so that a typo cannot make the bridge hammer a
	// server. 0 means no floor (for a single cycle, where the interval is
	// never waited).
	MinInterval time.Duration
	// CheckOnly loads the file for --check, which usually runs outside the
	// service: a password reference that cannot be resolved here (a
	// systemd credential, a variable the unit sets, a file only the
	// service user may read) becomes a warning in Config.Warnings instead
	// of an error, and everything else is still checked.
	CheckOnly bool
	// MaxMessageSize applies --max-message-size to every account; 0 means
	// bridge.DefaultMaxMessageSize.
	MaxMessageSize int64
}

// MinInterval is the floor the bridge puts under every account's interval,
// unless it runs a single cycle.
const MinInterval = 30 * time.Second

// Config is a loaded configuration file.
type Config struct {
	Path     string
	Accounts []Account
	// Warnings are the password references that could not be resolved
	// when Defaults.CheckOnly was set, one line each.
	Warnings []string
}

// ConfigError is a configuration file that cannot be used, with the file
// and, when known, the account.
type ConfigError struct {
	Path    string
	Account string
	Err     error
}

func (e *ConfigError) Error() string {
	if e.Account != "" {
		return fmt.Sprintf("config %s: account %q: %v", e.Path, e.Account, e.Err)
	}
	return fmt.Sprintf("config %s: %v", e.Path, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// fileConfig is the layout of the TOML file.
type fileConfig struct {
	Interval   *Duration       `toml:"interval"`
	MaxBackoff *Duration       `toml:"max_backoff"`
	Timeout    *Duration       `toml:"timeout"`
	Accounts   []accountConfig `toml:"account"`
}

type accountConfig struct {
	Name       string       `toml:"name" json:"name"`
	Folder     string       `toml:"folder" json:"folder"`
	Delete     string       `toml:"delete" json:"delete"`
	Journal    string       `toml:"journal" json:"journal"`
	Baseline   bool         `toml:"baseline" json:"baseline"`
	Seen       bool         `toml:"seen" json:"seen"`
	Interval   *Duration    `toml:"interval" json:"interval"`
	MaxBackoff *Duration    `toml:"max_backoff" json:"max_backoff"`
	Timeout    *Duration    `toml:"timeout" json:"timeout"`
	POP3       serverConfig `toml:"pop3" json:"pop3"`
	IMAP       serverConfig `toml:"imap" json:"imap"`
}

type serverConfig struct {
	Server            string `toml:"server" json:"server"`
	User              string `toml:"user" json:"user"`
	TLS               string `toml:"tls" json:"tls"`
	Auth              string `toml:"auth" json:"auth"`
	Password          any    `toml:"password" json:"password"`
	CAFile            string `toml:"ca_file" json:"ca_file"`
	TLSServerName     string `toml:"tls_server_name" json:"tls_server_name"`
	AllowInsecureAuth bool   `toml:"allow_insecure_auth" json:"allow_insecure_auth"`
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$`)

// LoadConfig reads and checks a configuration file, resolving every account
// completely: addresses, TLS roots, secret references (env variables must be
// set, files must be readable), journal paths. Nothing connects yet.
func LoadConfig(path string, def Defaults) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{Path: path, Err: err}
	}
	// Whoever can write the file can run commands as us through a
	// { command = ... } reference.
	if err := secret.CheckNotWritable(path); err != nil {
		return nil, &ConfigError{Path: path, Err: err}
	}
	var fc fileConfig
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&fc)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, &ConfigError{Path: path, Err: fmt.Errorf("line %d: %s", perr.Position.Line, perr.Message)}
		}
		return nil, &ConfigError{Path: path, Err: err}
	}
	for _, k := range md.Undecoded() {
		// The keys inside a password reference are read by secret.Parse.
		if len(k) >= 4 && k[0] == "account" && k[len(k)-2] == "password" {
			continue
		}
		return nil, &ConfigError{Path: path, Err: fmt.Errorf("unknown key %q", k.String())}
	}
	if len(fc.Accounts) == 0 {
		return nil, &ConfigError{Path: path, Err: errors.New("no [[account]] in the file")}
	}
	baseDir := filepath.Dir(path)
	if abs, err := filepath.Abs(baseDir); err == nil {
		baseDir = abs
	}
	top := def
	if fc.Interval != nil {
		top.Interval = time.Duration(*fc.Interval)
	}
	if fc.MaxBackoff != nil {
		top.MaxBackoff = time.Duration(*fc.MaxBackoff)
	}
	if fc.Timeout != nil {
		top.Timeout = time.Duration(*fc.Timeout)
	}
	cfg := &Config{Path: path}
	names := map[string]bool{}
	journals := map[string]string{}
	for i, ac := range fc.Accounts {
		label := ac.Name
		if label == "" {
			label = fmt.Sprintf("#%d", i+1)
		}
		var warnings *[]string
		if def.CheckOnly {
			warnings = &cfg.Warnings
		}
		acct, err := ac.resolve(top, baseDir, label, warnings)
		if err != nil {
			return nil, &ConfigError{Path: path, Account: label, Err: err}
		}
		if names[acct.Name] {
			return nil, &ConfigError{Path: path, Account: label, Err: errors.New("another account has the same name")}
		}
		names[acct.Name] = true
		if other, ok := journals[acct.Journal]; ok {
			return nil, &ConfigError{Path: path, Account: label, Err: fmt.Errorf("shares its journal %s with account %q; each account needs its own", acct.Journal, other)}
		}
		journals[acct.Journal] = acct.Name
		cfg.Accounts = append(cfg.Accounts, *acct)
	}
	return cfg, nil
}

func (ac *accountConfig) resolve(def Defaults, baseDir, label string, warnings *[]string) (*Account, error) {
	if !validName.MatchString(ac.Name) {
		return nil, fmt.Errorf("name = %q: want 1 to 64 of A-Z a-z 0-9 . _ @ + -, starting with a letter or digit", ac.Name)
	}
	interval, maxBackoff, timeout := def.Interval, def.MaxBackoff, def.Timeout
	if ac.Interval != nil {
		interval = time.Duration(*ac.Interval)
	}
	if ac.MaxBackoff != nil {
		maxBackoff = time.Duration(*ac.MaxBackoff)
	}
	if ac.Timeout != nil {
		timeout = time.Duration(*ac.Timeout)
	}
	if interval < 0 || maxBackoff < 0 || timeout < 0 {
		return nil, errors.New("interval, max_backoff and timeout must not be negative")
	}
	if interval < def.MinInterval {
		return nil, fmt.Errorf("interval = %q is below the floor of %s, which keeps the bridge from hammering the server (use --once for a single cycle)",
			FormatDuration(interval), FormatDuration(def.MinInterval))
	}
	if interval == 0 {
		interval = DefaultInterval // what the scheduler would use; --check shows it
	}
	deleteNow, deleteAfter, err := ParseDeletePolicy(ac.Delete)
	if err != nil {
		return nil, err
	}
	warn := func(msg string) { *warnings = append(*warnings, fmt.Sprintf("account %q: %s", label, msg)) }
	if warnings == nil {
		warn = nil
	}
	pop3, err := ac.POP3.endpoint("pop3", timeout, baseDir, warn)
	if err != nil {
		return nil, err
	}
	imap, err := ac.IMAP.endpoint("imap", timeout, baseDir, warn)
	if err != nil {
		return nil, err
	}
	folder := ac.Folder
	if folder == "" {
		folder = bridge.DefaultFolder
	}
	if folder, err = bridge.CanonicalFolder(folder); err != nil {
		return nil, fmt.Errorf("folder: %v", err)
	}
	journal := ac.Journal
	if journal == "" {
		journal, err = state.DefaultPath(pop3.Addr, pop3.Username, imap.Addr, imap.Username, folder)
		if err != nil {
			return nil, fmt.Errorf("%v (or set journal = \"/path\")", err)
		}
	} else {
		if journal, err = secret.ExpandEnv(journal); err != nil {
			return nil, fmt.Errorf("journal: %v", err)
		}
		if !filepath.IsAbs(journal) {
			journal = filepath.Join(baseDir, journal)
		}
	}
	fp, _ := json.Marshal(struct {
		A                          *accountConfig
		Interval, Backoff, Timeout time.Duration
		Baseline                   bool
		Journal                    string
	}{ac, interval, maxBackoff, timeout, def.Baseline, journal})
	return &Account{
		Name: ac.Name,
		POP3: pop3,
		IMAP: imap,
		Bridge: bridge.Config{
			Folder:         folder,
			Delete:         deleteNow,
			DeleteAfter:    deleteAfter,
			Seen:           ac.Seen,
			Timeout:        timeout,
			MaxMessageSize: def.MaxMessageSize,
		},
		Journal:     journal,
		Baseline:    ac.Baseline || def.Baseline,
		Policy:      Policy{Interval: interval, MaxBackoff: maxBackoff, Jitter: DefaultJitter},
		Fingerprint: string(fp),
	}, nil
}

// endpoint builds the endpoint of one side of an account. With warn set, a
// password reference that cannot be resolved is passed to warn, and the
// endpoint's secret returns that error at login.
func (sc *serverConfig) endpoint(proto string, timeout time.Duration, baseDir string, warn func(string)) (*bridge.Endpoint, error) {
	if sc.Server == "" {
		return nil, fmt.Errorf("%s.server is missing", proto)
	}
	if sc.User == "" {
		return nil, fmt.Errorf("%s.user is missing", proto)
	}
	ref, err := secret.Parse(sc.Password)
	if err != nil {
		return nil, fmt.Errorf("%s.password: %v", proto, err)
	}
	src, err := ref.Open(secret.Options{What: upperProto(proto) + " password", BaseDir: baseDir, Timeout: timeout})
	var secretFn bridge.SecretFunc
	switch {
	case err != nil && warn != nil:
		warn(fmt.Sprintf("%s.password: %v; not resolvable here, so check it where the service runs", proto, err))
		unresolved := err
		secretFn = func(context.Context) (string, error) { return "", unresolved }
	case err != nil:
		return nil, fmt.Errorf("%s.password: %w", proto, err)
	default:
		secretFn = src.Resolve
	}
	caFile := sc.CAFile
	if caFile != "" {
		if caFile, err = secret.ExpandEnv(caFile); err != nil {
			return nil, fmt.Errorf("%s.ca_file: %v", proto, err)
		}
		if !filepath.IsAbs(caFile) {
			caFile = filepath.Join(baseDir, caFile)
		}
	}
	ep, err := bridge.EndpointSpec{Proto: proto, Server: sc.Server, User: sc.User, TLS: sc.TLS, Auth: sc.Auth,
		CAFile: caFile, TLSServerName: sc.TLSServerName, AllowInsecureAuth: sc.AllowInsecureAuth,
		Timeout: timeout, Secret: secretFn, OAuth2: ref.OAuth2()}.Build()
	var serr *bridge.SpecError
	if errors.As(err, &serr) && serr.Value != "" {
		return nil, fmt.Errorf("%s.%s = %q: %v", proto, serr.Field, serr.Value, serr.Err)
	}
	if errors.As(err, &serr) {
		return nil, fmt.Errorf("%s.%s: %v", proto, serr.Field, serr.Err)
	}
	if err != nil {
		return nil, fmt.Errorf("%v (use %s.tls = \"implicit\" or \"starttls\", or allow_insecure_auth = true if you accept that)", err, proto)
	}
	return ep, nil
}

func upperProto(proto string) string {
	if proto == "pop3" {
		return "POP3"
	}
	return "IMAP"
}
