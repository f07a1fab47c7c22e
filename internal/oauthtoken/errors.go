package oauthtoken

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/oauth2"
)

// Reason says why a token could not be had, and so what fixes it.
type Reason int

const (
	// ReasonRevoked: the authorization server no longer accepts the refresh
	// token (invalid_grant): it was revoked, expired, or the password
	// changed. Only a new login helps.
	ReasonRevoked Reason = iota + 1
	// ReasonClient: the server does not know the client id, or the client
	// secret is wrong, or the client may not use this grant
	// (invalid_client, unauthorized_client).
	ReasonClient
	// ReasonDenied: the user refused access (access_denied), or the
	// redirect came back with an error.
	ReasonDenied
	// ReasonExpired: the device code or the login expired before the user
	// approved it.
	ReasonExpired
	// ReasonUnreachable: the token endpoint could not be reached or did not
	// answer as an OAuth2 server.
	ReasonUnreachable
	// ReasonFile: the token file is missing, unreadable, not private, or
	// does not hold what a refresh needs.
	ReasonFile
	// ReasonServer: any other refusal from the authorization server
	// (invalid_scope, invalid_request, ...).
	ReasonServer
)

func (r Reason) String() string {
	switch r {
	case ReasonRevoked:
		return "revoked"
	case ReasonClient:
		return "client"
	case ReasonDenied:
		return "denied"
	case ReasonExpired:
		return "expired"
	case ReasonUnreachable:
		return "unreachable"
	case ReasonFile:
		return "file"
	case ReasonServer:
		return "server"
	}
	return "unknown"
}

// Error is a failure to get, refresh or store a token.
type Error struct {
	Op     string // "refresh", "device authorization", "device login", "code exchange", "read", "write", "lock", "redirect"
	Path   string // the token file, when there is one
	Reason Reason
	// Code and Description are the authorization server's error and
	// error_description, reduced to printable ASCII; "" when none.
	Code, Description string
	Err               error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("oauth2")
	if e.Path != "" {
		b.WriteString(" token file " + e.Path)
	}
	b.WriteString(": " + e.Op + ": ")
	switch e.Reason {
	case ReasonRevoked:
		b.WriteString("the refresh token was refused: it has been revoked or has expired")
	case ReasonClient:
		b.WriteString("the authorization server does not accept the client id (or client secret)")
	case ReasonDenied:
		b.WriteString("access was denied")
	case ReasonExpired:
		b.WriteString("the login expired before it was approved")
	case ReasonUnreachable:
		b.WriteString("the authorization server could not be reached")
	case ReasonServer:
		b.WriteString("the authorization server refused")
	}
	switch {
	case e.Code != "" && e.Description != "":
		fmt.Fprintf(&b, " (%s: %s)", e.Code, e.Description)
	case e.Code != "":
		fmt.Fprintf(&b, " (%s)", e.Code)
	case e.Err != nil && (e.Reason == ReasonUnreachable || e.Reason == ReasonFile):
		if e.Reason != ReasonFile {
			b.WriteString(": ")
		}
		b.WriteString(oneLine(e.Err.Error()))
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Hint says what the user should do about the error, in one phrase.
func (e *Error) Hint() string {
	switch e.Reason {
	case ReasonRevoked, ReasonExpired, ReasonDenied:
		return "run 'pop2imap login' again to get new tokens"
	case ReasonClient:
		return "check the client id (and --client-secret-file) against the app registration, then run 'pop2imap login' again"
	case ReasonUnreachable:
		if e.Path == "" {
			return "check the network and the endpoint URLs, then run 'pop2imap login' again"
		}
		return "check the network and the token endpoint; the tokens are kept, so rerun when it answers"
	case ReasonFile:
		if errors.Is(e.Err, fs.ErrNotExist) {
			return "create the token file with 'pop2imap login --token-file FILE'"
		}
		return "fix the token file, or write it again with 'pop2imap login --token-file FILE'"
	}
	return "check the app registration and the scopes, then run 'pop2imap login' again"
}

// NeedsLogin reports whether only a new interactive login can fix the
// error, as opposed to a network or file problem.
func (e *Error) NeedsLogin() bool {
	switch e.Reason {
	case ReasonRevoked, ReasonClient, ReasonDenied, ReasonExpired, ReasonServer:
		return true
	}
	return false
}

// classify turns an error from golang.org/x/oauth2 into an *Error. A
// cancelled context is returned as it is: an interruption is not a token
// problem.
func classify(op, path string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	e := &Error{Op: op, Path: path, Err: err, Reason: ReasonUnreachable}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e.Code, e.Description = printable(re.ErrorCode), printable(re.ErrorDescription)
		switch re.ErrorCode {
		case "invalid_grant":
			e.Reason = ReasonRevoked
		case "invalid_client", "unauthorized_client":
			e.Reason = ReasonClient
		case "access_denied", "authorization_declined":
			e.Reason = ReasonDenied
		case "expired_token":
			e.Reason = ReasonExpired
		case "":
			// No OAuth2 error: a proxy's page, a 5xx, a wrong URL.
			if re.Response != nil {
				e.Code = "HTTP " + printable(re.Response.Status)
			}
		default:
			e.Reason = ReasonServer
		}
	}
	// Anything else is a connection that failed or a reply that is not
	// an OAuth2 token response: the endpoint is not usable from here.
	return e
}

// printable keeps a server's text to one short line of printable ASCII.
func printable(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, strings.TrimSpace(s))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
