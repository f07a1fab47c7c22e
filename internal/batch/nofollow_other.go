//go:build !unix

package batch

// oNoFollow: this system has no O_NOFOLLOW.
const oNoFollow = 0
