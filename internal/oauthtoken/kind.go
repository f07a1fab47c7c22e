package oauthtoken

import "github.com/pop2imap/pop2imap/internal/errkind"

// ErrorKind is errkind.Auth when only a new 'pop2imap login' helps (a
// refresh token revoked, a client id unknown), else errkind.Token: a token
// file that cannot be read or written, or a token endpoint that cannot be
// reached, is retried at the slow, persistent pace, not in a storm against
// the authorization server.
func (e *Error) ErrorKind() errkind.Kind {
	if e.NeedsLogin() {
		return errkind.Auth
	}
	return errkind.Token
}
