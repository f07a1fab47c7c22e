package batch

import (
	"fmt"

	"github.com/pop2imap/pop2imap/internal/errkind"
)

// The selections Select knows, besides "" for every account.
const (
	OnlyFailed  = "failed"
	OnlyPending = "pending"
)

// Latest returns the last attempt at each account, by ID: the one that
// ended last, and of those that ended at the same time the later in
// results.
func Latest(results []Result) map[string]Result {
	latest := make(map[string]Result)
	for _, r := range results {
		keepLatest(latest, r)
	}
	return latest
}

// keepLatest puts r in latest unless the attempt there ended after it.
func keepLatest(latest map[string]Result, r Result) {
	if prev, ok := latest[r.ID]; ok && r.End.Before(prev.End) {
		return
	}
	latest[r.ID] = r
}

// Select returns the accounts a run takes, in their order:
//
//   - only "": all of them. A rerun goes over the done accounts too, to
//     copy what arrived since; their journals make that cheap.
//   - only "failed": those whose latest attempt failed or left messages
//     behind.
//   - only "pending": those with no attempt recorded in results yet.
//
// Any other value is an *OnlyError.
func Select(accounts []Account, latest map[string]Result, only string) ([]Account, error) {
	var keep func(r Result, tried bool) bool
	switch only {
	case "":
		return accounts, nil
	case OnlyFailed:
		keep = func(r Result, tried bool) bool { return tried && (r.Status == Failed || r.Status == LeftBehind) }
	case OnlyPending:
		keep = func(_ Result, tried bool) bool { return !tried }
	default:
		return nil, &OnlyError{Value: only}
	}
	var out []Account
	for _, a := range accounts {
		r, tried := latest[a.ID]
		if keep(r, tried) {
			out = append(out, a)
		}
	}
	return out, nil
}

// OnlyError is a selection Select does not know.
type OnlyError struct {
	Value string
}

func (e *OnlyError) Error() string {
	return fmt.Sprintf("batch: unknown selection %q: want %s or %s (or none, for every account)", e.Value, OnlyFailed, OnlyPending)
}

// ErrorKind is errkind.Usage: the selection comes from the command line.
func (e *OnlyError) ErrorKind() errkind.Kind { return errkind.Usage }
