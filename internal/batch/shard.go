package batch

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/pop2imap/pop2imap/internal/errkind"
)

// MaxShards bounds the count of a shard, far above any sensible number of
// machines, so that a typo cannot ask for a file name a billion wide.
const MaxShards = 100000

// Shard is one of Count parts of a batch, numbered from 0 as Kubernetes
// numbers an indexed Job's pods (JOB_COMPLETION_INDEX). The zero Shard is
// the whole batch, unsharded.
type Shard struct {
	Index, Count int
}

// ParseShard reads "i/n", with 0 <= i < n. The error is a *ShardError.
func ParseShard(s string) (Shard, error) {
	bad := func(format string, args ...any) (Shard, error) {
		return Shard{}, &ShardError{Value: s, Err: fmt.Errorf(format, args...)}
	}
	is, ns, ok := strings.Cut(s, "/")
	if !ok {
		return bad("want INDEX/COUNT, such as 0/4 for the first of four shards")
	}
	i, err1 := parseCount(is)
	n, err2 := parseCount(ns)
	switch {
	case err1 != nil || err2 != nil:
		return bad("want INDEX/COUNT, two whole numbers, such as 0/4 for the first of four shards")
	case n < 1 || n > MaxShards:
		return bad("the count must be between 1 and %d", MaxShards)
	case i >= n:
		return bad("the index must be below the count: shards are numbered from 0, so %d shards are 0/%d to %d/%d", n, n, n-1, n)
	}
	return Shard{Index: i, Count: n}, nil
}

// parseCount reads a number of plain digits: no sign, no spaces.
func parseCount(s string) (int, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" || len(s) > 9 {
		return 0, strconv.ErrSyntax
	}
	return strconv.Atoi(s)
}

// String is "i/n", or "" for the whole batch.
func (s Shard) String() string {
	if s.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Has reports whether a belongs to the shard: its ID, read as a number,
// modulo Count is Index. The ID is a hash of the account's pair, so the
// choice never depends on the order of the rows, and the shards of one
// file split its accounts between them with none left out or run twice.
func (s Shard) Has(a Account) bool {
	if s.Count <= 1 {
		return true
	}
	return idNumber(a.ID)%uint64(s.Count) == uint64(s.Index)
}

// idNumber reads an Account.ID as the number its hex digits spell, or,
// for an ID not made by Load, hashes it.
func idNumber(id string) uint64 {
	if v, err := strconv.ParseUint(id, 16, 64); err == nil {
		return v
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// ShardError is a shard that ParseShard cannot read.
type ShardError struct {
	Value string
	Err   error
}

func (e *ShardError) Error() string {
	return fmt.Sprintf("batch: shard %q: %v", e.Value, e.Err)
}

func (e *ShardError) Unwrap() error { return e.Err }

// ErrorKind is errkind.Usage: a shard comes from the command line.
func (e *ShardError) ErrorKind() errkind.Kind { return errkind.Usage }
