//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package oauthtoken

import (
	"context"
	"os"
	"syscall"
	"time"
)

// lockPath takes an exclusive flock on path+".lock", waiting for other
// holders until ctx is done (nil: no limit), and returns the function that
// releases it. The lock belongs to the open file description, so two
// goroutines of one process exclude each other as two processes do. The
// lock file is a sibling rather than the token file itself because the
// token file is replaced by rename: a lock on the old inode would not
// exclude a process that opened the new one.
func lockPath(ctx context.Context, path string) (unlock func(), err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	fail := func(err error) error {
		return &Error{Op: "lock", Path: path, Reason: ReasonFile, Err: err}
	}
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fail(err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fail(err)
	}
	wait := time.Millisecond
	for {
		var lerr error
		if err := rc.Control(func(fd uintptr) {
			lerr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
		}); err != nil {
			f.Close()
			return nil, fail(err)
		}
		switch lerr {
		case nil:
			return func() { f.Close() }, nil
		case syscall.EWOULDBLOCK, syscall.EINTR:
		default:
			f.Close()
			return nil, fail(lerr)
		}
		// Polling rather than a blocking flock, so that a cancelled
		// run does not hang behind another process's slow refresh.
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}
