package errkind

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/pop2imap/pop2imap/pop3"
	"github.com/pop2imap/pop2imap/state"
)

// selfKinded is an error type that names its own kind, or leaves it to its
// cause with "".
type selfKinded struct {
	k   Kind
	err error
}

func (e *selfKinded) Error() string   { return "self" }
func (e *selfKinded) Unwrap() error   { return e.err }
func (e *selfKinded) ErrorKind() Kind { return e.k }

// TestOf decides by type through wrappers, joins and kinds the errors name
// themselves, outermost first.
func TestOf(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, None},
		{"plain text decides nothing", errors.New("[IN-USE] temporary quota password"), Unknown},
		{"canceled", fmt.Errorf("run: %w", context.Canceled), Canceled},
		{"pop3 login delay", &pop3.Error{Code: "LOGIN-DELAY"}, LoginDelay},
		{"pop3 in use", &pop3.Error{Code: "IN-USE"}, InUse},
		{"pop3 sys/temp", &pop3.Error{Code: "SYS/TEMP"}, Temporary},
		{"pop3 plain -ERR", &pop3.Error{Text: "no such message"}, Unknown},
		{"imap overquota", &imap.Error{Code: imap.ResponseCodeOverQuota}, Quota},
		{"imap limit", &imap.Error{Code: imap.ResponseCodeLimit}, Throttled},
		{"imap unavailable", &imap.Error{Code: imap.ResponseCodeUnavailable}, Temporary},
		{"locked journal", &state.LockedError{Path: "/j"}, Journal},
		{"unknown CA", x509.UnknownAuthorityError{}, TLS},
		{"plain port under TLS", tls.RecordHeaderError{}, Config},
		{"connection lost", fmt.Errorf("RETR: %w", io.ErrUnexpectedEOF), Temporary},
		{"wrapped kind", Wrap(Config, errors.New("password file missing")), Config},
		{"outer kind overrules the cause", &selfKinded{k: Usage, err: &pop3.Error{Code: "IN-USE"}}, Usage},
		{"empty kind defers to the cause", &selfKinded{err: &pop3.Error{Code: "IN-USE"}}, InUse},
		{"joined", errors.Join(errors.New("a"), Wrap(Journal, errors.New("b"))), Journal},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.err); got != tt.want {
				t.Errorf("Of(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
	if Wrap(Config, nil) != nil {
		t.Error("Wrap(Config, nil) is not nil")
	}
}

// TestKindProperties: which kinds are retried at once, which need a person,
// which are the user's mistakes.
func TestKindProperties(t *testing.T) {
	for _, k := range []Kind{Temporary, Throttled, InUse, LoginDelay} {
		if !k.Retryable() || k.Persistent() || k.UserError() {
			t.Errorf("%s: retryable %v, persistent %v, user error %v", k, k.Retryable(), k.Persistent(), k.UserError())
		}
	}
	for _, k := range []Kind{Auth, TLS, Quota, Journal, Protocol, Config, Usage} {
		if k.Retryable() || !k.Persistent() {
			t.Errorf("%s: retryable %v, persistent %v", k, k.Retryable(), k.Persistent())
		}
	}
	for _, k := range []Kind{Unreachable, Unknown, Canceled} {
		if k.Retryable() || k.Persistent() {
			t.Errorf("%s: retryable %v, persistent %v", k, k.Retryable(), k.Persistent())
		}
	}
	if !Config.UserError() || !Usage.UserError() || Auth.UserError() {
		t.Error("only config and usage errors are the user's")
	}
}
