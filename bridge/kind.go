package bridge

import "github.com/pop2imap/pop2imap/internal/errkind"

// The kinds of this package's errors; package errkind explains them.

// ErrorKind says what can be done about a failure to connect: the step that
// failed decides, unless the cause names a kind of its own.
func (e *ConnectError) ErrorKind() errkind.Kind {
	cause := errkind.Find(e.Err)
	if cause == errkind.Canceled {
		return cause
	}
	switch e.Op {
	case "dial":
		return errkind.Unreachable
	case "greeting":
		if cause == errkind.Config {
			return cause
		}
		return errkind.Unreachable
	case "password", "access token":
		// The password file, password command or token command failed:
		// no rerun mends that; the user must fix the source, or log in
		// again when the token source says so.
		if cause == errkind.Auth || cause == errkind.Token {
			return cause
		}
		return errkind.Config
	case "tls":
		if cause == errkind.Config {
			return cause
		}
		return errkind.TLS
	}
	return cause
}

// ErrorKind is errkind.Auth: the server refused the credentials.
func (e *AuthError) ErrorKind() errkind.Kind { return errkind.Auth }

// ErrorKind is errkind.Journal: nothing may go on unrecorded.
func (e *JournalError) ErrorKind() errkind.Kind { return errkind.Journal }

// ErrorKind is errkind.Protocol: the POP3 server misbehaves.
func (e *OversizeError) ErrorKind() errkind.Kind { return errkind.Protocol }
