package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pop2imap/pop2imap/internal/errkind"
	"github.com/pop2imap/pop2imap/internal/imapappend"
)

// FolderError is a target folder the server will not make, with the
// hierarchy separator it uses, so that the user can tell whether the name
// or the level separator is wrong.
type FolderError struct {
	Folder    string
	Separator rune // 0 when the server has no hierarchy
	Err       error
}

func (e *FolderError) Error() string {
	sep := "has no folder hierarchy"
	if e.Separator != 0 {
		sep = fmt.Sprintf("separates folder levels with %q", string(e.Separator))
	}
	return fmt.Sprintf("imap: cannot create folder %q: %v (the server %s; --folder takes / between levels)", e.Folder, e.Err, sep)
}

func (e *FolderError) Unwrap() error { return e.Err }

// ErrorKind is errkind.Config when the server refused the name, and the
// cause's kind when the connection failed.
func (e *FolderError) ErrorKind() errkind.Kind {
	var ierr *imap.Error
	if errors.As(e.Err, &ierr) && (ierr.Type == imap.StatusResponseTypeNo || ierr.Type == imap.StatusResponseTypeBad) {
		return errkind.Config
	}
	return errkind.None
}

// folderConn is what the folder checks need of an IMAP connection. A
// session makes them on its first appending connection (appendFolders),
// so that an account costs one IMAP login; verify and the probe on the
// go-imap connection they read with (goIMAPFolders). The checks
// themselves are written once, over this interface.
type folderConn interface {
	// list returns the hierarchy delimiter of each mailbox matching
	// pattern (0 for a flat server).
	list(pattern string) ([]rune, error)
	// status returns UIDVALIDITY and the message count; a NO is an
	// *imap.Error.
	status(folder string) (*imap.StatusData, error)
	// create creates one folder; one that exists is not an error.
	create(folder string) error
}

// goIMAPFolders makes the folder checks on a go-imap connection.
type goIMAPFolders struct {
	c       *imapclient.Client
	timeout time.Duration
}

func (g goIMAPFolders) list(pattern string) ([]rune, error) {
	var delims []rune
	err := withDeadline(g.c, g.timeout, func() error {
		boxes, err := g.c.List("", pattern, nil).Collect()
		for _, b := range boxes {
			delims = append(delims, b.Delim)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("imap: LIST \"\" %q: %w", pattern, err)
	}
	return delims, nil
}

func (g goIMAPFolders) status(folder string) (*imap.StatusData, error) {
	var data *imap.StatusData
	err := withDeadline(g.c, g.timeout, func() error {
		var err error
		data, err = g.c.Status(folder, &imap.StatusOptions{UIDValidity: true, NumMessages: true}).Wait()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("imap: STATUS %q: %w", folder, err)
	}
	return data, nil
}

func (g goIMAPFolders) create(folder string) error {
	err := withDeadline(g.c, g.timeout, g.c.Create(folder, nil).Wait)
	var ierr *imap.Error
	if errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeAlreadyExists {
		return nil
	}
	return err
}

// appendFolders makes the folder checks on an appending connection.
type appendFolders struct {
	ctx context.Context
	c   *imapappend.Client
}

func (a appendFolders) list(pattern string) ([]rune, error) { return a.c.List(a.ctx, "", pattern) }
func (a appendFolders) status(folder string) (*imap.StatusData, error) {
	return a.c.Status(a.ctx, folder)
}
func (a appendFolders) create(folder string) error { return a.c.Create(a.ctx, folder) }

// folderSeparator asks the server for its hierarchy separator, with
// LIST "" "". It returns 0 for a flat server.
func folderSeparator(c folderConn) (rune, error) {
	delims, err := c.list("")
	if err != nil || len(delims) == 0 {
		return 0, err
	}
	return delims[0], nil
}

// serverFolderName turns a --folder name that uses / between levels into
// the server's name, whose levels are separated by sep. A name without /
// is the server's name already.
func serverFolderName(folder string, sep rune) (string, error) {
	if !strings.Contains(folder, "/") || sep == '/' {
		return folder, nil
	}
	if sep == 0 {
		return "", &FolderError{Folder: folder, Err: errkind.Wrap(errkind.Config, errors.New("a name with / needs folder levels"))}
	}
	return strings.ReplaceAll(folder, "/", string(sep)), nil
}

// resolveFolder returns the server's name of folder, reading the
// separator from the server when the name has levels.
func resolveFolder(c folderConn, folder string) (string, error) {
	if !strings.Contains(folder, "/") {
		return folder, nil
	}
	sep, err := folderSeparator(c)
	if err != nil {
		return "", err
	}
	return serverFolderName(folder, sep)
}

// createFolder creates folder and any missing parent before it, since some
// servers create no parents themselves. A refusal becomes a FolderError
// that names the separator.
func createFolder(c folderConn, folder string) error {
	sep, err := folderSeparator(c)
	if err != nil {
		return err
	}
	create := c.create
	if sep != 0 {
		parts := strings.Split(folder, string(sep))
		for i := 1; i < len(parts); i++ {
			parent := strings.Join(parts[:i], string(sep))
			if parent == "" {
				continue
			}
			exists, err := folderExists(c, parent)
			if err != nil {
				return err
			}
			if !exists {
				if err := create(parent); err != nil {
					return &FolderError{Folder: parent, Separator: sep, Err: err}
				}
			}
		}
	}
	if err := create(folder); err != nil {
		return &FolderError{Folder: folder, Separator: sep, Err: err}
	}
	return nil
}
