package batch

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pop2imap/pop2imap/internal/errkind"
	"github.com/pop2imap/pop2imap/internal/secret"
)

// RowError is one thing wrong in an accounts file, at a line and, when it
// is about one cell or one header name, a column. It reads like a
// compiler's message, "accounts.csv:14: column imap_tls: ...", so an editor
// can jump to it. It never holds a password: a password cell's error says
// what is wrong with it, not what it holds.
type RowError struct {
	Path   string // the accounts file, as given
	Line   int    // the line its row (or the header) starts on
	Column string // the column's name, "" when the whole row is wrong
	Err    error
}

func (e *RowError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: column %s: %v", e.Path, e.Line, e.Column, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }

// ErrorKind is errkind.Config: the file is the user's to fix.
func (e *RowError) ErrorKind() errkind.Kind { return errkind.Config }

// RowErrors is every RowError of an accounts file, up to MaxRowErrors of
// them, so that the user can fix the whole file in one pass. errors.As
// finds each *RowError in it.
type RowErrors struct {
	Errs []*RowError
	More int // how many more were found and left out
}

// MaxRowErrors bounds how many row errors Load reports.
const MaxRowErrors = 20

func (e *RowErrors) Error() string {
	lines := make([]string, 0, len(e.Errs)+1)
	for _, r := range e.Errs {
		lines = append(lines, r.Error())
	}
	if e.More > 0 {
		lines = append(lines, fmt.Sprintf("and %d more", e.More))
	}
	return strings.Join(lines, "\n")
}

func (e *RowErrors) Unwrap() []error {
	errs := make([]error, len(e.Errs))
	for i, r := range e.Errs {
		errs[i] = r
	}
	return errs
}

// ErrorKind is errkind.Config.
func (e *RowErrors) ErrorKind() errkind.Kind { return errkind.Config }

// add records one more error, keeping the first MaxRowErrors.
func (e *RowErrors) add(r *RowError) {
	if len(e.Errs) < MaxRowErrors {
		e.Errs = append(e.Errs, r)
		return
	}
	e.More++
}

// err returns e when it holds anything, nil otherwise.
func (e *RowErrors) err() error {
	if len(e.Errs) == 0 {
		return nil
	}
	return e
}

// FileError is an accounts file that cannot be read at all: missing, open
// to other users, too large, or without a header row.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string {
	var perr *secret.PermissionError
	if errors.As(e.Err, &perr) {
		return "batch: " + perr.Error() // it names the file and the chmod
	}
	return fmt.Sprintf("batch: accounts file %s: %v", e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// ErrorKind is errkind.Config.
func (e *FileError) ErrorKind() errkind.Kind { return errkind.Config }

// DefaultsError is a Defaults field that cannot work for any row that
// leaves its cell empty. Setting is the column it fills (pop3_tls,
// imap_auth, ...) or, for a default without a column, ca_file or timeout;
// the command's flags are named alike (--pop3-tls, --ca-file).
type DefaultsError struct {
	Setting string
	Err     error
}

func (e *DefaultsError) Error() string {
	return fmt.Sprintf("batch: the default %s: %v", e.Setting, e.Err)
}

func (e *DefaultsError) Unwrap() error { return e.Err }

// ErrorKind is errkind.Usage: the defaults come from the command line.
func (e *DefaultsError) ErrorKind() errkind.Kind { return errkind.Usage }

// DuplicateError is a POP3 mailbox listed on two rows. Copying one mailbox
// twice at once would race, and with delete one copy would remove what the
// other has not yet copied.
type DuplicateError struct {
	Addr, User string // the POP3 server (host:port, host lower-cased) and user
	FirstLine  int    // the row that listed it first
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("the POP3 mailbox %s on %s is already listed on line %d; list each mailbox once", e.User, e.Addr, e.FirstLine)
}
