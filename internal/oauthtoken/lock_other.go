//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package oauthtoken

import (
	"context"
	"errors"
	"runtime"
)

// lockPath fails: without flock, two processes could spend one rotating
// refresh token twice and lose the login.
func lockPath(ctx context.Context, path string) (func(), error) {
	return nil, &Error{Op: "lock", Path: path, Reason: ReasonFile,
		Err: errors.New("file locks are not supported on " + runtime.GOOS)}
}
