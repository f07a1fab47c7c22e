package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/oauthtoken"
)

// SecretRef says where a password comes from. A configuration file holds
// only references, never the password itself, so that the file can be read
// by anyone who needs to see the set-up. Exactly one field is set.
type SecretRef struct {
	Env        string // an environment variable of the bridge process
	File       string // a file whose first line is the secret; ${VAR} is expanded
	Command    string // a shell command that prints the secret on its first line
	Credential string // a systemd credential: $CREDENTIALS_DIRECTORY/NAME
	// OAuth2TokenFile is a token file written by `pop2imap login`: the
	// secret is its access token, refreshed as needed. ${VAR} is expanded.
	OAuth2TokenFile string
}

// errLiteralSecret is what a password written straight into the file gets.
// It never repeats the value.
var errLiteralSecret = errors.New(`a literal password is not allowed in the config file; ` +
	`write a reference: { env = "VAR" }, { file = "/path" }, { command = "pass show x" } or { credential = "name" }`)

// parseSecretRef reads the TOML value of a password key: an inline table
// with exactly one of env, file, command or credential.
func parseSecretRef(v any) (SecretRef, error) {
	var ref SecretRef
	switch v := v.(type) {
	case nil:
		return ref, errors.New(`missing; write { env = "VAR" }, { file = "/path" }, { command = "..." } or { credential = "name" }`)
	case string:
		return ref, errLiteralSecret
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) != 1 {
			return ref, fmt.Errorf("want exactly one of env, file, command, credential or oauth2_token_file, got %q", keys)
		}
		s, ok := v[keys[0]].(string)
		if !ok || s == "" {
			return ref, fmt.Errorf("%s must be a non-empty string", keys[0])
		}
		switch keys[0] {
		case "env":
			ref.Env = s
		case "file":
			ref.File = s
		case "command":
			ref.Command = s
		case "credential":
			ref.Credential = s
		case "oauth2_token_file":
			ref.OAuth2TokenFile = s
		default:
			return ref, fmt.Errorf("unknown secret source %q (want env, file, command, credential or oauth2_token_file)", keys[0])
		}
		return ref, nil
	}
	return ref, errLiteralSecret
}

// resolve checks that the secret can be had and returns the function that
// fetches it at each login. Environment variables are read once; files and
// credentials are read again at every login, so a rotated password is picked
// up without a restart; commands are run at every login, so they can hand out
// fresh tokens. baseDir anchors relative file paths (the config file's
// directory).
func (r SecretRef) resolve(baseDir string) (bridge.SecretFunc, error) {
	switch {
	case r.Env != "":
		v := os.Getenv(r.Env)
		if v == "" {
			return nil, fmt.Errorf("environment variable %s is not set", r.Env)
		}
		return func(context.Context) (string, error) { return v, nil }, nil
	case r.Command != "":
		cmd := r.Command
		return func(ctx context.Context) (string, error) { return runSecretCommand(ctx, cmd) }, nil
	case r.Credential != "":
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return nil, fmt.Errorf("credential %q: CREDENTIALS_DIRECTORY is not set (credentials come from systemd's LoadCredential=)", r.Credential)
		}
		if strings.ContainsRune(r.Credential, '/') || r.Credential == "." || r.Credential == ".." {
			return nil, fmt.Errorf("credential %q: a credential name cannot contain '/'", r.Credential)
		}
		return fileSecret(filepath.Join(dir, r.Credential))
	case r.OAuth2TokenFile != "":
		path, err := expandEnv(r.OAuth2TokenFile)
		if err != nil {
			return nil, err
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(baseDir, path)
		}
		src, err := oauthtoken.Open(path, nil)
		if err != nil {
			return nil, err
		}
		return bridge.TokenSourceSecret(src), nil
	case r.File != "":
		path, err := expandEnv(r.File)
		if err != nil {
			return nil, err
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(baseDir, path)
		}
		return fileSecret(path)
	}
	return nil, errors.New("empty secret reference")
}

// fileSecret checks now that path holds a secret, and reads it again at
// every login.
func fileSecret(path string) (bridge.SecretFunc, error) {
	read := func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		s := firstLine(b)
		if s == "" {
			return "", fmt.Errorf("%s is empty", path)
		}
		return s, nil
	}
	if _, err := read(); err != nil {
		return nil, err
	}
	return func(context.Context) (string, error) { return read() }, nil
}

// expandEnv replaces ${VAR} and $VAR in s, refusing variables that are not
// set: an unset CREDENTIALS_DIRECTORY must not turn into a path under "/".
func expandEnv(s string) (string, error) {
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

// runSecretCommand runs a password command through the shell and returns
// the first line it prints. Its stderr goes to ours (the service log); its
// stdout is never shown.
func runSecretCommand(ctx context.Context, command string) (string, error) {
	c := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	c.Stderr = os.Stderr
	out, err := c.Output()
	if err != nil {
		return "", fmt.Errorf("the password command failed: %v", err)
	}
	s := firstLine(out)
	if s == "" {
		return "", errors.New("the password command printed nothing")
	}
	return s, nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), "\r")
}
