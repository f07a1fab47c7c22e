// Package batch moves many mailboxes in one run: it reads the accounts
// from an RFC 4180 CSV file, chooses a shard of them, keeps one journal
// per account in a state directory with a results log beside them, and
// reports on the whole batch in JSON and in one self-contained HTML page.
// Running the accounts under per-host connection caps is package fleet's.
package batch

import "time"

// Status is how an attempt at one account ended.
type Status string

const (
	// Done: every message on the POP3 server is in the folder.
	Done Status = "done"
	// LeftBehind: the run ended, but the IMAP server refused some
	// messages (too large, over quota), and they are still on the POP3
	// server.
	LeftBehind Status = "left-behind"
	// Failed: the attempt stopped on an error; Kind says what kind.
	Failed Status = "failed"
)

// Result is one attempt at one account: one line of results.jsonl. It
// never holds a secret: Error is the error's text, which pop2imap's error
// types keep free of passwords and tokens.
type Result struct {
	Account string    `json:"account"` // the readable name: the CSV's name column, or pop3_user@pop3_server
	ID      string    `json:"id"`      // the account's stable hash (see Account.ID)
	Line    int       `json:"line,omitempty"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Status  Status    `json:"status"`
	Kind    string    `json:"kind,omitempty"`   // errkind.Kind of a failure
	Error   string    `json:"error,omitempty"`  // one line, what went wrong
	Advice  string    `json:"advice,omitempty"` // one line, what to do
	Retries int       `json:"retries,omitempty"`

	Listed    int64  `json:"listed"`
	Done      int64  `json:"already_done"`
	Appended  int64  `json:"appended"`
	Recovered int64  `json:"recovered,omitempty"`
	Adopted   int64  `json:"adopted,omitempty"`
	Deleted   int64  `json:"deleted,omitempty"`
	LeftCount int64  `json:"left_behind"`
	Bytes     int64  `json:"bytes"`
	Shard     string `json:"shard,omitempty"` // "i/n" when the run was sharded
}
