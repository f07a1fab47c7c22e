package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/oauthtoken"
)

// secretSource says where one password or OAuth2 access token comes from.
// Exactly one of the fields is used, in the order token file, token
// command, command, file, environment.
type secretSource struct {
	what         string // "POP3 password"
	envVar       string
	file         string
	command      string
	tokenCommand string // prints an OAuth2 access token
	tokenFile    string // an OAuth2 token file from `pop2imap login`
	oauth2       bool   // an OAuth2 mechanism was forced: the secret is a token
	flagFor      string // the flag prefix, e.g. "--pop3", for error messages
}

// resolve returns a function that yields the secret at each login. A command
// is run again each time, so it can hand out fresh tokens. It fails at once
// when no source is configured, or two commands or files compete, before any
// connection is made.
func (s secretSource) resolve() (bridge.SecretFunc, error) {
	if s.tokenFile != "" {
		if s.tokenCommand != "" || s.command != "" || s.file != "" {
			return nil, usageErrorf("%s-oauth2-token-file cannot be combined with %s-oauth2-token-cmd, %s-password-cmd or %s-password-file",
				s.flagFor, s.flagFor, s.flagFor, s.flagFor)
		}
		src, err := oauthtoken.Open(s.tokenFile, nil)
		if err != nil {
			return nil, err
		}
		return bridge.TokenSourceSecret(src), nil
	}
	if s.tokenCommand != "" {
		if s.command != "" || s.file != "" {
			return nil, usageErrorf("%s-oauth2-token-cmd cannot be combined with %s-password-cmd or %s-password-file",
				s.flagFor, s.flagFor, s.flagFor)
		}
		s.what = strings.Replace(s.what, "password", "OAuth2 token", 1)
		s.command = s.tokenCommand
	} else if s.oauth2 {
		s.what = strings.Replace(s.what, "password", "OAuth2 token", 1)
	}
	switch {
	case s.command != "":
		cmd := s.command
		return func(ctx context.Context) (string, error) {
			return runSecretCommand(ctx, cmd, s.what)
		}, nil
	case s.file != "":
		b, err := os.ReadFile(s.file)
		if err != nil {
			return nil, fmt.Errorf("reading the %s: %w", s.what, err)
		}
		secret := firstLine(b)
		if secret == "" {
			return nil, fmt.Errorf("the %s file %s is empty", s.what, s.file)
		}
		return constSecret(secret), nil
	case os.Getenv(s.envVar) != "":
		return constSecret(os.Getenv(s.envVar)), nil
	}
	if s.oauth2 {
		return nil, usageErrorf("no %s: use %s-oauth2-token-file (from 'pop2imap login') or %s-oauth2-token-cmd (or set %s, or use %s-password-file, for a token that will not expire during the run)",
			s.what, s.flagFor, s.flagFor, s.envVar, s.flagFor)
	}
	return nil, usageErrorf("no %s: set %s, or use %s-password-file, %s-password-cmd or %s-oauth2-token-cmd",
		s.what, s.envVar, s.flagFor, s.flagFor, s.flagFor)
}

// parseAuthFlag parses --pop3-auth or --imap-auth. A token command implies
// OAuth2, so it cannot go with a password mechanism.
func parseAuthFlag(proto, value string, haveTokenCmd bool) (bridge.AuthMech, error) {
	if value == "" {
		value = "auto"
	}
	m, err := bridge.ParseAuthMech(proto, value)
	if err != nil {
		return "", usageErrorf("--%s-auth: %v", proto, err)
	}
	if haveTokenCmd && m != bridge.AuthAuto && !m.OAuth2() {
		return "", usageErrorf("--%s-oauth2-token-cmd prints an OAuth2 token, but --%s-auth %s takes a password (use xoauth2 or oauthbearer)",
			proto, proto, value)
	}
	return m, nil
}

// isOAuth2Mech reports whether a --pop3-auth or --imap-auth value names an
// OAuth2 mechanism; bad values are left for parseAuthFlag to report.
func isOAuth2Mech(value string) bool {
	m, err := bridge.ParseAuthMech("imap", value)
	return err == nil && m.OAuth2()
}

func constSecret(s string) bridge.SecretFunc {
	return func(context.Context) (string, error) { return s, nil }
}

// runSecretCommand runs a password command through the shell and returns
// the first line it prints. Its stderr passes through to ours, so a command
// can ask the user for a passphrase; its stdout is never shown.
func runSecretCommand(ctx context.Context, command, what string) (string, error) {
	c := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	c.Stderr = os.Stderr
	out, err := c.Output()
	if err != nil {
		return "", fmt.Errorf("the %s command failed: %v", what, err)
	}
	secret := firstLine(out)
	if secret == "" {
		return "", fmt.Errorf("the %s command printed nothing", what)
	}
	return secret, nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), "\r")
}
