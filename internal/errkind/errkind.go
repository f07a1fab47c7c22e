// Package errkind sorts pop2imap's errors into kinds by what can be done
// about them: retry at once, retry later, wait as the server asks, or stop
// until a person fixes something. It is the one place that decides this;
// the command's exit codes and advice, the bridge's retry of a session and
// the daemon's back-off all read the kind from here.
//
// The kind is decided from types along the chain of wrapped errors, never
// from the text. An error type of this module says its own kind with an
// ErrorKind method; the types of the packages below (pop3, state, go-imap,
// crypto/x509, crypto/tls, net) are known here directly. The outermost
// error that names a kind decides, so a wrapper can overrule its cause.
package errkind

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"

	"github.com/emersion/go-imap/v2"

	"github.com/pop2imap/pop2imap/pop3"
	"github.com/pop2imap/pop2imap/state"
)

// Kind is what can be done about an error. It is also the "kind" label of
// the bridge's errors metric.
type Kind string

const (
	// None is no error.
	None Kind = ""
	// Unknown is an error no type explains; it is treated as temporary by
	// the scheduler and ends a run with exit 1.
	Unknown Kind = "unknown"
	// Canceled is a run stopped by a signal.
	Canceled Kind = "canceled"
	// Temporary usually mends itself: a dropped connection, a timeout,
	// POP3 [SYS/TEMP], IMAP [UNAVAILABLE].
	Temporary Kind = "temporary"
	// Throttled is a server limiting connections: IMAP [LIMIT] at login.
	Throttled Kind = "throttled"
	// InUse is POP3 [IN-USE]: another session holds the mailbox.
	InUse Kind = "in-use"
	// LoginDelay is POP3 [LOGIN-DELAY]: we logged in too soon.
	LoginDelay Kind = "login-delay"
	// Unreachable is a server that cannot be reached or does not speak the
	// protocol there: a wrong host or port, or one that is down.
	Unreachable Kind = "unreachable"
	// Auth is a login the server refused.
	Auth Kind = "auth"
	// TLS is a certificate that does not verify, or a handshake refused.
	TLS Kind = "tls"
	// Quota is an IMAP account over its quota.
	Quota Kind = "quota"
	// Journal is a journal that cannot be opened or written.
	Journal Kind = "journal"
	// Protocol is a server that breaks the protocol.
	Protocol Kind = "protocol"
	// Token is an OAuth2 access token that cannot be had now: the token
	// file cannot be read or written, or the authorization server cannot
	// be reached. It is retried at the slow pace of a persistent failure,
	// not in a storm against the authorization server, but it is not a
	// mistake in what the user typed.
	Token Kind = "token"
	// Config is a setting that can never work as given: a password source
	// that fails, a path that cannot be written, a TLS mode that does not
	// fit the port, a folder name the server refuses.
	Config Kind = "config"
	// Usage is a mistake on the command line: a missing or malformed flag.
	Usage Kind = "usage"
)

// Persistent reports whether the failure needs a person: retrying the same
// thing soon will not help.
func (k Kind) Persistent() bool {
	switch k {
	case Auth, TLS, Quota, Journal, Protocol, Token, Config, Usage:
		return true
	}
	return false
}

// Retryable reports whether a session that failed this way is worth trying
// again within seconds, in the same run.
func (k Kind) Retryable() bool {
	switch k {
	case Temporary, Throttled, InUse, LoginDelay:
		return true
	}
	return false
}

// UserError reports whether the error is in what the user typed or
// configured, so that the command exits 2.
func (k Kind) UserError() bool { return k == Config || k == Usage }

// Error attaches a kind to an error that has none of its own.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string   { return e.Err.Error() }
func (e *Error) Unwrap() error   { return e.Err }
func (e *Error) ErrorKind() Kind { return e.Kind }

// Wrap gives err the kind k; nil stays nil.
func Wrap(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Err: err}
}

// kinded is an error that says its own kind; "" means it leaves the
// decision to its cause.
type kinded interface {
	ErrorKind() Kind
}

// Of returns the kind of err: None for nil, Unknown when nothing in its
// chain decides.
func Of(err error) Kind {
	if err == nil {
		return None
	}
	if k := Find(err); k != None {
		return k
	}
	return Unknown
}

// Find returns the kind that the chain of err names, or None. Error types
// that decide by their cause call it on the cause.
func Find(err error) Kind {
	if err == nil {
		return None
	}
	if k := walk(err); k != None {
		return k
	}
	return known(err)
}

// walk asks each error in the chain, outermost first, for its own kind.
func walk(err error) Kind {
	for err != nil {
		if e, ok := err.(kinded); ok {
			if k := e.ErrorKind(); k != None {
				return k
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if k := walk(e); k != None {
					return k
				}
			}
			return None
		default:
			return None
		}
	}
	return None
}

// known decides from the types of the packages below this module's own.
func known(err error) Kind {
	var (
		perr   *pop3.Error
		pperr  *pop3.ProtocolError
		ierr   *imap.Error
		lerr   *state.LockedError
		corr   *state.CorruptError
		uaerr  x509.UnknownAuthorityError
		hnerr  x509.HostnameError
		cierr  x509.CertificateInvalidError
		tlsver *tls.CertificateVerificationError
		rec    tls.RecordHeaderError
		alert  tls.AlertError
		nerr   net.Error
	)
	switch {
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.As(err, &perr) && perr.Code == "LOGIN-DELAY":
		return LoginDelay
	case errors.As(err, &perr) && perr.Code == "IN-USE":
		return InUse
	case errors.As(err, &perr) && perr.Temporary():
		return Temporary
	case errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeOverQuota:
		return Quota
	case errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeLimit:
		return Throttled
	case errors.As(err, &ierr) && (ierr.Code == imap.ResponseCodeUnavailable || ierr.Code == imap.ResponseCodeInUse ||
		ierr.Code == imap.ResponseCodeServerBug):
		return Temporary
	case errors.As(err, &lerr), errors.As(err, &corr):
		return Journal
	case errors.As(err, &uaerr), errors.As(err, &hnerr), errors.As(err, &cierr), errors.As(err, &tlsver),
		errors.As(err, &alert):
		return TLS
	case errors.As(err, &rec):
		// Plain text where TLS was expected: the TLS mode does not fit
		// the port.
		return Config
	case errors.As(err, &pperr):
		return Protocol
	case errors.As(err, &nerr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, context.DeadlineExceeded):
		return Temporary
	}
	return None
}
