// Package secret resolves references to secrets (passwords and OAuth2
// access tokens) for the command line and the bridge daemon alike, so that
// both read them by one rule.
//
// A Ref names where a secret is kept: an environment variable, a file, a
// shell command or a systemd credential. It never holds the secret. Ref.Open
// checks the reference once, at start-up, and returns a Source whose Resolve
// method yields the secret at each login:
//
//   - an environment variable is read once, by Open;
//   - a file or credential is read again at every Resolve, so a rotated
//     password is picked up without a restart;
//   - a command is run at every Resolve, so it can hand out fresh tokens.
//
// What a reference can make pop2imap spend is bounded: a command has a
// deadline (Options.Timeout), its output is read up to MaxOutput bytes, and
// once it is killed its leftover children get WaitDelay to let go of its
// output. A command runs without pop2imap's own secret variables in its
// environment (see commandEnv), so the POP3 password command never sees the
// IMAP password. A secret file that other users can read is refused, as
// ssh refuses such a key, with the chmod that fixes it.
//
// An OAuth2 token file (from `pop2imap login`) is one more kind: its access
// token is the secret, refreshed as package oauthtoken decides. New kinds
// are added as a Kind, a case in Open and a Source that resolves them.
package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/oauthtoken"
)

// Kind is the kind of place a secret is kept in.
type Kind string

const (
	Env        Kind = "env"        // an environment variable of pop2imap
	File       Kind = "file"       // a file whose first line is the secret; ${VAR} is expanded
	Command    Kind = "command"    // a shell command that prints the secret on its first line
	Credential Kind = "credential" // a systemd credential: $CREDENTIALS_DIRECTORY/NAME
	// OAuth2TokenFile is a token file written by `pop2imap login`: the
	// secret is its access token, refreshed as needed. ${VAR} is expanded.
	OAuth2TokenFile Kind = "oauth2_token_file"
)

// kinds lists the kinds in the order the error messages name them.
var kinds = []Kind{Env, File, Command, Credential, OAuth2TokenFile}

// Ref says where one secret is kept.
type Ref struct {
	Kind  Kind
	Value string // the variable name, path, command line or credential name
}

func (r Ref) String() string { return fmt.Sprintf("{ %s = %q }", r.Kind, r.Value) }

// OAuth2 reports whether the reference always yields an OAuth2 access
// token, whatever login mechanism is configured.
func (r Ref) OAuth2() bool { return r.Kind == OAuth2TokenFile }

const (
	// DefaultTimeout bounds a command when Options.Timeout is 0.
	DefaultTimeout = time.Minute
	// MaxOutput bounds what is read of a command's output.
	MaxOutput = 64 << 10
	// WaitDelay is how long a killed command's children may keep its
	// output open before pop2imap stops waiting for them.
	WaitDelay = 2 * time.Second
)

// Options says how to resolve a reference.
type Options struct {
	What    string        // what the secret is for, in errors: "POP3 password"
	BaseDir string        // anchors a relative file path; "" means the working directory
	Timeout time.Duration // deadline for each run of a command; 0 means DefaultTimeout
	Stderr  io.Writer     // a command's stderr; nil means os.Stderr
}

// Source yields one secret at each login.
type Source struct {
	what    string
	resolve func(ctx context.Context) (string, error)
}

// Resolve returns the secret. Its signature is that of bridge.SecretFunc.
func (s *Source) Resolve(ctx context.Context) (string, error) { return s.resolve(ctx) }

// Error is a secret that could not be had. It never holds the secret.
type Error struct {
	What    string // "POP3 password"
	Ref     Ref
	Timeout bool // a command did not finish within its deadline
	Err     error
}

func (e *Error) Error() string {
	switch e.Ref.Kind {
	case Command:
		return fmt.Sprintf("the %s command %v", e.What, e.Err)
	case Env:
		return fmt.Sprintf("the %s: environment variable %v", e.What, e.Err)
	}
	return fmt.Sprintf("the %s: %v", e.What, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Open checks now that the secret can be had (a variable is set, a file
// exists, is not empty and is private) and returns its Source. A command
// is not run: it runs at each login.
func (r Ref) Open(opts Options) (*Source, error) {
	if opts.What == "" {
		opts.What = "password"
	}
	fail := func(err error) (*Source, error) { return nil, &Error{What: opts.What, Ref: r, Err: err} }
	if r.Value == "" {
		return fail(fmt.Errorf("%s must be a non-empty string", r.Kind))
	}
	switch r.Kind {
	case Env:
		v := os.Getenv(r.Value)
		if v == "" {
			return fail(fmt.Errorf("%s is not set", r.Value))
		}
		hideEnv(r.Value)
		return &Source{what: opts.What, resolve: func(context.Context) (string, error) { return v, nil }}, nil
	case Command:
		return &Source{what: opts.What, resolve: func(ctx context.Context) (string, error) {
			s, timeout, err := runCommand(ctx, r.Value, opts)
			if err != nil {
				return "", &Error{What: opts.What, Ref: r, Timeout: timeout, Err: err}
			}
			return s, nil
		}}, nil
	case Credential:
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return fail(fmt.Errorf("credential %q: CREDENTIALS_DIRECTORY is not set (credentials come from systemd's LoadCredential=)", r.Value))
		}
		if strings.ContainsRune(r.Value, '/') || r.Value == "." || r.Value == ".." {
			return fail(fmt.Errorf("credential %q: a credential name cannot contain '/'", r.Value))
		}
		return openFile(r, filepath.Join(dir, r.Value), opts)
	case File:
		path, err := ExpandEnv(r.Value)
		if err != nil {
			return fail(err)
		}
		if !filepath.IsAbs(path) && opts.BaseDir != "" {
			path = filepath.Join(opts.BaseDir, path)
		}
		return openFile(r, path, opts)
	case OAuth2TokenFile:
		path, err := ExpandEnv(r.Value)
		if err != nil {
			return fail(err)
		}
		if !filepath.IsAbs(path) && opts.BaseDir != "" {
			path = filepath.Join(opts.BaseDir, path)
		}
		// Its errors are *oauthtoken.Error, which callers classify
		// themselves (a login needed, or a file to fix).
		src, err := oauthtoken.Open(path, nil)
		if err != nil {
			return nil, err
		}
		return &Source{what: opts.What, resolve: bridge.TokenSourceSecret(src)}, nil
	}
	return fail(fmt.Errorf("unknown secret source %q (want %s)", r.Kind, kindList()))
}

// openFile checks now that path holds a private secret, and reads it again
// at every Resolve.
func openFile(r Ref, path string, opts Options) (*Source, error) {
	read := func() (string, error) {
		if err := CheckPrivate(path); err != nil {
			return "", &Error{What: opts.What, Ref: r, Err: err}
		}
		b, err := readBounded(path)
		if err != nil {
			return "", &Error{What: opts.What, Ref: r, Err: err}
		}
		s := firstLine(b)
		if s == "" {
			return "", &Error{What: opts.What, Ref: r, Err: fmt.Errorf("%s is empty", path)}
		}
		return s, nil
	}
	if _, err := read(); err != nil {
		return nil, err
	}
	return &Source{what: opts.What, resolve: func(context.Context) (string, error) { return read() }}, nil
}

// readBounded reads up to MaxOutput bytes of a file: a secret is one line,
// and a path that points at something endless must not be read whole.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxOutput))
}

// PermissionError is a file whose mode lets other users read a secret or
// change what pop2imap runs.
type PermissionError struct {
	Path string
	Mode fs.FileMode
	Why  string // "readable by other users"
	Fix  string // the command that fixes it
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("%s is %s (mode %04o); run: %s", e.Path, e.Why, e.Mode.Perm(), e.Fix)
}

// CheckPrivate refuses a file that its group or other users can read or
// write: it holds a secret.
func CheckPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return &PermissionError{Path: path, Mode: m, Why: "accessible by other users", Fix: "chmod go-rwx " + shellQuote(path)}
	}
	return nil
}

// CheckNotWritable refuses a file that its group or other users can write:
// it says what pop2imap runs.
func CheckNotWritable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if m := fi.Mode().Perm(); m&0o022 != 0 {
		return &PermissionError{Path: path, Mode: m, Why: "writable by other users", Fix: "chmod go-w " + shellQuote(path)}
	}
	return nil
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runCommand runs command through the shell and returns the first line it
// prints. Its stderr passes through, so a command can ask the user for a
// passphrase; its stdout is never shown. timeout reports that the command
// was killed at its deadline.
func runCommand(ctx context.Context, command string, opts Options) (secret string, timeout bool, err error) {
	limit := opts.Timeout
	if limit <= 0 {
		limit = DefaultTimeout
	}
	runCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c := exec.CommandContext(runCtx, "/bin/sh", "-c", command)
	c.Env = commandEnv(os.Environ())
	c.Stderr = opts.Stderr
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	out := &boundedBuffer{max: MaxOutput}
	c.Stdout = out
	c.WaitDelay = WaitDelay
	err = c.Run()
	switch {
	case ctx.Err() != nil:
		return "", false, fmt.Errorf("was stopped: %w", ctx.Err())
	case runCtx.Err() != nil:
		return "", true, fmt.Errorf("did not finish within %v", limit)
	case out.overflow:
		return "", false, fmt.Errorf("printed more than %d KiB", MaxOutput>>10)
	case err != nil && !errors.Is(err, exec.ErrWaitDelay):
		return "", false, fmt.Errorf("failed: %v", err)
	}
	s := firstLine(out.buf.Bytes())
	if s == "" {
		return "", false, errors.New("printed nothing")
	}
	return s, false, nil
}

// boundedBuffer keeps up to max bytes and then refuses more, which ends the
// copy from the command: a command that prints without end gets EPIPE.
type boundedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.max {
		b.overflow = true
		return 0, errors.New("output too long")
	}
	return b.buf.Write(p)
}

var hidden = struct {
	sync.Mutex
	names map[string]bool
}{names: map[string]bool{}}

// hideEnv adds name to the variables a command never sees: it holds a
// secret that pop2imap reads.
func hideEnv(name string) {
	hidden.Lock()
	hidden.names[name] = true
	hidden.Unlock()
}

// commandEnv returns env without pop2imap's own secret variables: every
// POP2IMAP_ variable that names a password, token or secret,
// CREDENTIALS_DIRECTORY, and every variable an env reference has read.
func commandEnv(env []string) []string {
	hidden.Lock()
	defer hidden.Unlock()
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if isSecretVar(name) || hidden.names[name] {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func isSecretVar(name string) bool {
	if name == "CREDENTIALS_DIRECTORY" {
		return true
	}
	up := strings.ToUpper(name)
	if !strings.HasPrefix(up, "POP2IMAP_") {
		return false
	}
	for _, w := range []string{"PASSWORD", "TOKEN", "SECRET", "CREDENTIAL"} {
		if strings.Contains(up, w) {
			return true
		}
	}
	return false
}

// Parse reads a secret reference as a TOML decoder hands it over: an inline
// table with exactly one key, the kind. A string is refused, so a password
// is never written into a config file; the error never repeats it.
func Parse(v any) (Ref, error) {
	switch v := v.(type) {
	case nil:
		return Ref{}, fmt.Errorf("missing; write %s", examples())
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) != 1 {
			return Ref{}, fmt.Errorf("want exactly one of %s, got %q", kindList(), keys)
		}
		s, ok := v[keys[0]].(string)
		if !ok || s == "" {
			return Ref{}, fmt.Errorf("%s must be a non-empty string", keys[0])
		}
		for _, k := range kinds {
			if string(k) == keys[0] {
				return Ref{Kind: k, Value: s}, nil
			}
		}
		return Ref{}, fmt.Errorf("unknown secret source %q (want %s)", keys[0], kindList())
	}
	return Ref{}, ErrLiteral
}

// ErrLiteral is what a password written straight into a config file gets.
var ErrLiteral = errors.New(`a literal password is not allowed in the config file; write a reference: ` + examples())

func examples() string {
	return `{ env = "VAR" }, { file = "/path" }, { command = "pass show x" }, { credential = "name" } or { oauth2_token_file = "/path" }`
}

func kindList() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// ExpandEnv replaces ${VAR} and $VAR in s, refusing variables that are not
// set: an unset CREDENTIALS_DIRECTORY must not turn into a path under "/".
func ExpandEnv(s string) (string, error) {
	var missing []string
	out := os.Expand(s, func(name string) string {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%q: environment variable %s is not set", s, missing[0])
	}
	return out, nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), "\r")
}
