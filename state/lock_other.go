//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package state

import (
	"errors"
	"os"
	"runtime"
)

var errLocked = errors.New("lock is held")

// lockFile fails: without flock the journal cannot keep two runs apart, and
// two runs on one journal could copy a message twice.
func lockFile(f *os.File) error {
	return errors.New("exclusive file locks are not supported on " + runtime.GOOS)
}

// oNoFollow: without flock the journal is not opened at all.
const oNoFollow = 0
