package bridge

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
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
func ensureFolder(c *imapclient.Client, folder string, timeout time.Duration) (created bool, err error) {
	exists, err := folderExists(c, folder, timeout)
	if err != nil || exists {
		return false, err
	}
	if err := createFolder(c, folder, timeout); err != nil {
		return false, err
	}
	return true, nil
}

func folderExists(c *imapclient.Client, folder string, timeout time.Duration) (bool, error) {
	var found bool
	err := withDeadline(c, timeout, func() error {
		boxes, err := c.List("", folder, nil).Collect()
		found = len(boxes) > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("imap: LIST %q: %w", folder, err)
	}
	return found, nil
}

// locator finds a message in the target folder that a previous run may have
// appended without learning the outcome. It never appends or deletes.
type locator struct {
	c       *imapclient.Client
	folder  string
	timeout time.Duration
	// claimed holds UIDs that other journal entries already own, so that two
	// identical messages are not both satisfied by one stored copy.
	claimed map[imap.UID]bool
	// uidValidity is the folder's UIDVALIDITY, once selected.
	uidValidity uint32
	selected    bool
	missing     bool
}

// find reports the UID of a stored copy of e, or 0 when there is none. A copy
// matches when its bytes hash to e's SHA-256, or to e's line-ending normalised
// SHA-256 for servers that rewrite bare LF.
//
// Candidates come from SEARCH: by Message-ID when the message has one, and
// otherwise by INTERNALDATE, which pop2imap sets from the message itself (or
// records in the journal before appending when the message has no date).
//
// With loose false only an exact match counts. The caller settles exact
// matches for every entry before it allows loose ones, so that an entry
// whose own copy is stored can never lose it to another entry that differs
// only in line endings.
func (l *locator) find(e *state.Entry, loose bool) (imap.UID, error) {
	if err := l.selectFolder(); err != nil || l.missing {
		return 0, err
	}
	criteria := &imap.SearchCriteria{}
	if e.MessageID != "" {
		criteria.Header = []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: e.MessageID}}
	} else {
		day := e.InternalDate
		criteria.Since = day.AddDate(0, 0, -1)
		criteria.Before = day.AddDate(0, 0, 2)
	}
	var uids []imap.UID
	err := withDeadline(l.c, l.timeout, func() error {
		data, err := l.c.UIDSearch(criteria, nil).Wait()
		if err != nil {
			return err
		}
		uids = data.AllUIDs()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("imap: UID SEARCH in %q: %w", l.folder, err)
	}
	for _, uid := range uids {
		if l.claimed[uid] {
			continue
		}
		exact, looseOK, err := l.matches(uid, e)
		if err != nil {
			return 0, err
		}
		if exact || (loose && looseOK) {
			return uid, nil
		}
	}
	return 0, nil
}

func (l *locator) selectFolder() error {
	if l.selected || l.missing {
		return nil
	}
	var data *imap.SelectData
	err := withDeadline(l.c, l.timeout, func() error {
		var err error
		data, err = l.c.Select(l.folder, &imap.SelectOptions{ReadOnly: true}).Wait()
		return err
	})
	var ierr *imap.Error
	if errors.As(err, &ierr) && ierr.Type == imap.StatusResponseTypeNo {
		l.missing = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("imap: EXAMINE %q: %w", l.folder, err)
	}
	l.selected = true
	l.uidValidity = data.UIDValidity
	return nil
}

// matches streams one stored message through both hashes without holding it
// in memory.
func (l *locator) matches(uid imap.UID, e *state.Entry) (exact, loose bool, err error) {
	var sum, norm [sha256.Size]byte
	var size int64
	err = withDeadline(l.c, l.timeout+time.Duration(e.Size/100_000)*time.Second, func() error {
		cmd := l.c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{
			UID:         true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		})
		defer cmd.Close()
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			for item := msg.Next(); item != nil; item = msg.Next() {
				body, ok := item.(imapclient.FetchItemDataBodySection)
				if !ok || body.Literal == nil {
					continue
				}
				h := sha256.New()
				nh := newCRLFHasher()
				n, err := io.Copy(io.MultiWriter(h, nh), body.Literal)
				if err != nil {
					return err
				}
				size = n
				h.Sum(sum[:0])
				nh.Sum(norm[:0])
			}
		}
		return cmd.Close()
	})
	if err != nil {
		return false, false, fmt.Errorf("imap: UID FETCH %d in %q: %w", uid, l.folder, err)
	}
	exact = size == e.Size && sum == e.SHA256
	return exact, exact || norm == e.NormSHA256, nil
}

// isNetError reports whether err came from the connection rather than from a
// server reply.
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded)
}
