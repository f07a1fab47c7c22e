package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// checkOutputFile checks, before any connection is made, that path can be
// written as a file: it is not a directory, its directory exists, and this
// user may create or replace files there. It writes nothing that stays: a
// run that fails leaves no trace of the check.
func checkOutputFile(flag, path string) error {
	fail := func(hint string, err error) error {
		return &settingError{setting: flag, hint: hint, err: err}
	}
	if fi, err := os.Stat(path); err == nil {
		if fi.IsDir() {
			return fail("name a file, not a directory", fmt.Errorf("%s is a directory", path))
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return fail("choose a file this user may write, or fix its permissions", err)
		}
		return f.Close()
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail("create the directory first, or choose another file", fmt.Errorf("the directory %s does not exist", dir))
	case err != nil:
		return fail("choose a file in a directory this user may write", err)
	case !fi.IsDir():
		return fail("choose a file in a directory", fmt.Errorf("%s is not a directory", dir))
	}
	return checkWritableDir(dir, func(err error) error {
		return fail("choose a file in a directory this user may write, or fix its permissions", err)
	})
}

// checkJournalPath checks that the journal at path can be opened or
// created: the journal creates its missing directories itself, so the
// nearest directory that exists must be writable.
func checkJournalPath(flag, path string) error {
	fail := func(hint string, err error) error {
		return &settingError{setting: flag, hint: hint, err: err}
	}
	if fi, err := os.Stat(path); err == nil {
		if fi.IsDir() {
			return fail("name the journal file, not a directory", fmt.Errorf("%s is a directory", path))
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fail("choose a journal this user may write, or fix its permissions", err)
		}
		f.Close()
		// The lock file sits beside the journal.
		return checkWritableDir(filepath.Dir(path), func(err error) error {
			return fail("the journal's directory must be writable for its lock file", err)
		})
	}
	dir := filepath.Dir(path)
	for {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return fail("choose a journal path under a directory", fmt.Errorf("%s is not a directory", dir))
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fail("choose a journal path this user may write", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return checkWritableDir(dir, func(err error) error {
		return fail("choose a journal path in a directory this user may write, or fix its permissions", err)
	})
}

// checkWritableDir creates and removes a temporary file in dir: the only
// test of write permission that also holds for root on a read-only mount
// and for ACLs.
func checkWritableDir(dir string, fail func(error) error) error {
	f, err := os.CreateTemp(dir, ".pop2imap-check-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("cannot write in %s: %w", dir, pe.Err)
		}
		return fail(err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
