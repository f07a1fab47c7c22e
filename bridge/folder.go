package bridge

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pop2imap/pop2imap/internal/errkind"
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

// folderSeparator asks the server for its hierarchy separator, with
// LIST "" "". It returns 0 for a flat server.
func folderSeparator(c *imapclient.Client, timeout time.Duration) (rune, error) {
	var sep rune
	err := withDeadline(c, timeout, func() error {
		boxes, err := c.List("", "", nil).Collect()
		if len(boxes) > 0 {
			sep = boxes[0].Delim
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("imap: LIST \"\" \"\": %w", err)
	}
	return sep, nil
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
func resolveFolder(c *imapclient.Client, folder string, timeout time.Duration) (string, error) {
	if !strings.Contains(folder, "/") {
		return folder, nil
	}
	sep, err := folderSeparator(c, timeout)
	if err != nil {
		return "", err
	}
	return serverFolderName(folder, sep)
}

// createFolder creates folder and any missing parent before it, since some
// servers create no parents themselves. A refusal becomes a FolderError
// that names the separator.
func createFolder(c *imapclient.Client, folder string, timeout time.Duration) error {
	sep, err := folderSeparator(c, timeout)
	if err != nil {
		return err
	}
	create := func(name string) error {
		err := withDeadline(c, timeout, c.Create(name, nil).Wait)
		var ierr *imap.Error
		if errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeAlreadyExists {
			return nil
		}
		return err
	}
	if sep != 0 {
		parts := strings.Split(folder, string(sep))
		for i := 1; i < len(parts); i++ {
			parent := strings.Join(parts[:i], string(sep))
			if parent == "" {
				continue
			}
			exists, err := folderExists(c, parent, timeout)
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
