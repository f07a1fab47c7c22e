//go:build unix

package batch

import "syscall"

// oNoFollow makes opening the results log fail on a symbolic link, as
// package state does for journals, so that whoever can write the state
// directory cannot point pop2imap's writes at another of the user's files.
const oNoFollow = syscall.O_NOFOLLOW
