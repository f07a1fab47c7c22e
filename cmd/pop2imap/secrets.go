package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/secret"
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
	timeout      time.Duration
}

// resolve returns a function that yields the secret at each login, by the
// rules of package secret: a command runs again each time, so it can hand
// out fresh tokens, and a file is read again each time. It fails at once
// when no source is configured, two commands or files compete, or a file
// is missing, empty or readable by others, before any connection is made.
func (s secretSource) resolve() (bridge.SecretFunc, error) {
	if s.tokenFile != "" {
		if s.tokenCommand != "" || s.command != "" || s.file != "" {
			return nil, usageErrorf("%s-oauth2-token-file cannot be combined with %s-oauth2-token-cmd, %s-password-cmd or %s-password-file",
				s.flagFor, s.flagFor, s.flagFor, s.flagFor)
		}
		src, err := secret.Ref{Kind: secret.OAuth2TokenFile, Value: s.tokenFile}.Open(secret.Options{What: s.what})
		if err != nil {
			return nil, err
		}
		return src.Resolve, nil
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
	var ref secret.Ref
	switch {
	case s.command != "":
		ref = secret.Ref{Kind: secret.Command, Value: s.command}
	case s.file != "":
		ref = secret.Ref{Kind: secret.File, Value: s.file}
	case os.Getenv(s.envVar) != "":
		ref = secret.Ref{Kind: secret.Env, Value: s.envVar}
	case s.oauth2:
		return nil, usageErrorf("no %s: use %s-oauth2-token-file (from 'pop2imap login') or %s-oauth2-token-cmd (or set %s, or use %s-password-file, for a token that will not expire during the run)",
			s.what, s.flagFor, s.flagFor, s.envVar, s.flagFor)
	default:
		return nil, usageErrorf("no %s: set %s, or use %s-password-file, %s-password-cmd or %s-oauth2-token-cmd",
			s.what, s.envVar, s.flagFor, s.flagFor, s.flagFor)
	}
	src, err := ref.Open(secret.Options{What: s.what, Timeout: s.timeout})
	if err != nil {
		return nil, &usageError{msg: err.Error(), err: err}
	}
	return func(ctx context.Context) (string, error) {
		v, err := src.Resolve(ctx)
		var serr *secret.Error
		if errors.As(err, &serr) && serr.Timeout {
			// A command that hangs is a setting to fix, not a server to
			// retry: exit code 2, as for a bad flag.
			return "", &usageError{msg: err.Error() + " (--timeout)", err: err}
		}
		return v, err
	}, nil
}

// isOAuth2Mech reports whether a --pop3-auth or --imap-auth value names an
// OAuth2 mechanism; bad values are left for bridge.EndpointSpec.Build to
// report.
func isOAuth2Mech(value string) bool {
	m, err := bridge.ParseAuthMech("imap", value)
	return err == nil && m.OAuth2()
}

func constSecret(s string) bridge.SecretFunc {
	return func(context.Context) (string, error) { return s, nil }
}
