package bridge

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pop2imap/pop2imap/internal/errkind"
	"github.com/pop2imap/pop2imap/state"
)

// RefusedError is an APPEND the IMAP server refused for this message alone
// (too big, unparseable, over APPENDLIMIT). The message stays on the POP3
// server and the run goes on.
type RefusedError struct {
	Err error
}

func (e *RefusedError) Error() string { return "refused by the IMAP server: " + e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// ErrOverQuota stops a run: no further message can be stored until the user
// frees space in the IMAP account.
var ErrOverQuota error = &errkind.Error{Kind: errkind.Quota, Err: errors.New("the IMAP account is over its quota")}

// classifyAppendError sorts an APPEND failure into what the pipeline does
// next. certain reports whether the server answered, so that the message is
// known not to be stored; otherwise the outcome is unknown and the folder
// must be searched before the message is sent again.
func classifyAppendError(err error) (kind errKind, certain bool) {
	var ierr *imap.Error
	if !errors.As(err, &ierr) {
		return errTemporary, false
	}
	switch ierr.Code {
	case imap.ResponseCodeTryCreate:
		return errTryCreate, true
	case imap.ResponseCodeOverQuota:
		return errFatalQuota, true
	case imap.ResponseCodeTooBig, imap.ResponseCodeLimit, imap.ResponseCodeParse,
		imap.ResponseCodeUnknownCTE, imap.ResponseCodeCannot:
		return errRefused, true
	case imap.ResponseCodeUnavailable, imap.ResponseCodeInUse, imap.ResponseCodeServerBug:
		return errTemporary, true
	}
	switch ierr.Type {
	case imap.StatusResponseTypeNo:
		return errRefused, true
	case imap.StatusResponseTypeBye:
		return errTemporary, false
	}
	return errFatal, true
}

type errKind int

const (
	errTemporary errKind = iota
	errTryCreate
	errRefused
	errFatalQuota
	errFatal
)

// ensureFolder makes sure folder exists, creating it when missing.
func ensureFolder(c folderConn, folder string) (created bool, err error) {
	exists, err := folderExists(c, folder)
	if err != nil || exists {
		return false, err
	}
	if err := createFolder(c, folder); err != nil {
		return false, err
	}
	return true, nil
}

func folderExists(c folderConn, folder string) (bool, error) {
	delims, err := c.list(folder)
	return len(delims) > 0, err
}

// CanonicalFolder checks a folder name given by the user and returns the
// name pop2imap uses for it. INBOX is case-insensitive (RFC 3501 §5.1), so
// "Inbox" and "inbox" are INBOX, and name one journal; an empty name is an
// error rather than a silent INBOX.
func CanonicalFolder(name string) (string, error) {
	if name == "" {
		return "", errors.New("the folder name is empty (leave out --folder for INBOX)")
	}
	if strings.EqualFold(name, "INBOX") {
		return "INBOX", nil
	}
	return name, nil
}

// folderState is what STATUS says of the target folder before a session
// plans anything.
type folderState struct {
	missing     bool
	uidValidity uint32 // 0 when missing
	messages    uint32
}

// statFolder reads the folder's UIDVALIDITY and message count. A folder the
// server says NO about is missing (ensureFolder creates it later).
func statFolder(c folderConn, folder string) (folderState, error) {
	data, err := c.status(folder)
	var ierr *imap.Error
	if errors.As(err, &ierr) && ierr.Type == imap.StatusResponseTypeNo {
		return folderState{missing: true}, nil
	}
	if err != nil {
		return folderState{}, err
	}
	st := folderState{uidValidity: data.UIDValidity}
	if data.NumMessages != nil {
		st.messages = *data.NumMessages
	}
	return st, nil
}

// adopter finds, before a message is appended, a copy of it that the folder
// already holds and that no other message owns: the folder, not the
// journal, is the ground truth for what is stored. It shares the session's
// go-imap connection, with the folder selected read-only, among the
// appenders.
type adopter struct {
	c       *imapclient.Client
	idx     *folderIndex
	folder  string
	timeout time.Duration
	journal *state.Journal

	mu sync.Mutex
	// owned is set once the copies that journal entries own are claimed;
	// that waits until some message has a candidate, so that a session
	// whose messages are all new never reads the whole journal.
	owned bool
}

// find returns the UID of a stored copy of fp, and claims it, or 0 when the
// folder holds none that is free. Exact copies are preferred over those
// that match only once line endings are normalised.
func (a *adopter) find(fp *fingerprint) (imap.UID, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	free := func(k int32) bool { return a.idx.claimed[k] }
	for {
		cands := a.idx.candidates(fp, free)
		if len(cands) == 0 {
			return 0, nil
		}
		if !a.owned {
			if err := a.claimOwned(); err != nil {
				return 0, &JournalError{err}
			}
			a.owned = true
			continue
		}
		matches, bad, err := a.idx.findCopies(a.c, a.timeout, fp, cands, false)
		var ierr *imap.Error
		if errors.As(err, &ierr) {
			// Expunged meanwhile, or unreadable: it cannot be the copy.
			a.idx.claimed[bad] = true
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("imap: UID FETCH %d in %q: %w", a.idx.msgs[bad].uid, a.folder, err)
		}
		if len(matches) == 0 {
			return 0, nil
		}
		k := matches[0].k
		a.idx.claimed[k] = true
		return a.idx.msgs[k].uid, nil
	}
}

// claimOwned claims the stored copies that the journal records under the
// folder's current UIDVALIDITY.
func (a *adopter) claimOwned() error {
	return a.journal.Each(func(e state.Entry) error {
		if e.UID != 0 && e.UIDValidity == a.idx.uidValidity && (e.Step == state.Appended || e.Step == state.Deleted) {
			a.idx.claimUID(imap.UID(e.UID))
		}
		return nil
	})
}

// isNetError reports whether err came from the connection rather than from a
// server reply.
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded)
}
