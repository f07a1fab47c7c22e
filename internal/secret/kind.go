package secret

import (
	"context"
	"errors"

	"github.com/pop2imap/pop2imap/internal/errkind"
)

// ErrorKind is errkind.Config: a password or token source that fails or
// hangs is the user's to fix, however the error reached the caller; a
// source cut short by a signal is errkind.Canceled.
func (e *Error) ErrorKind() errkind.Kind {
	if errors.Is(e.Err, context.Canceled) {
		return errkind.Canceled
	}
	return errkind.Config
}
