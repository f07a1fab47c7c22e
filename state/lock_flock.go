//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package state

import (
	"errors"
	"os"
	"syscall"
)

var errLocked = errors.New("lock is held")

// lockFile takes an exclusive flock on f without waiting. The lock belongs to
// f's open file description, so a second open of the same file conflicts even
// in the same process, and closing f releases it.
func lockFile(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	err = rc.Control(func(fd uintptr) {
		for {
			lerr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
			if lerr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if lerr == syscall.EWOULDBLOCK {
		return errLocked
	}
	return lerr
}

// oNoFollow makes opening the journal or its lock fail on a symbolic link,
// so that whoever can write the state directory cannot point pop2imap's
// writes at another of the user's files.
const oNoFollow = syscall.O_NOFOLLOW
