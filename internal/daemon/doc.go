// Package daemon runs pop2imap as a long-lived bridge: it polls each
// configured POP3 mailbox on its own schedule, copies new mail into its IMAP
// folder through bridge.Migrator, backs off after errors, and reports what it
// does as structured logs, Prometheus metrics and a health check.
//
// The package owns the policy of a daemon (when to run, how long to wait,
// when an account counts as healthy) and the bridge's configuration file;
// the pipeline itself, and every promise about exactly-once delivery, stay
// in package bridge. cmd/pop2imap only wires flags, signals and the HTTP
// listener to it.
package daemon
