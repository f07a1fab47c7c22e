package bridge

import "time"

// The defaults, in one place. The engine applies them to zero values, and
// the command's flags and the bridge's configuration file show the same
// ones.
const (
	// DefaultFolder is the target folder when none is given.
	DefaultFolder = "INBOX"
	// DefaultTimeout bounds each command on the wire.
	DefaultTimeout = time.Minute
	// DefaultWindow is how many RETR commands may be in flight when the
	// POP3 server allows pipelining, in migrate and verify alike.
	DefaultWindow = 64
	// DefaultIMAPConns is how many IMAP connections append in parallel.
	// How many APPENDs each carries adapts to the link (window.go), so
	// more connections rarely help; see the README's benchmark.
	DefaultIMAPConns = 4
	// MaxIMAPConns caps parallel IMAP connections: servers commonly limit
	// a user to about ten (Gmail to 15, Dovecot by default to 10 per user
	// and IP).
	MaxIMAPConns = 8
	// DefaultMaxMessageSize is the largest message copied when
	// Config.MaxMessageSize is 0.
	DefaultMaxMessageSize = 256 << 20
)

// MessagesPerConn is the fewest messages to copy that earn one more
// appending connection. One connection pipelines its APPENDs, so a few
// messages gain nothing from a second login; a batch of ten thousand
// small mailboxes saves three logins each.
const MessagesPerConn = 8
