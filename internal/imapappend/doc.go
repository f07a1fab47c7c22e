// Package imapappend is an IMAP client that does nothing but APPEND, with
// several commands in flight on one connection.
//
// go-imap's client waits for the server's "+" before every literal over
// 4 KiB, which costs a round trip per message. When the server offers
// LITERAL+ (RFC 7888), a Client sends non-synchronizing literals instead,
// so APPENDs stream back to back and the round trip is paid once per
// window of commands, not once per message. Without LITERAL+ it waits for
// "+" like any client.
//
// The package has two parts, one per phase of a connection. A Setup speaks
// the steps before login one command at a time: the greeting, STARTTLS,
// CAPABILITY, LOGIN and AUTHENTICATE (with any go-sasl client). Which
// steps to take, which mechanism to log in with and what a refusal means
// are the caller's to decide; pop2imap decides them in one place for both
// of its IMAP clients (bridge's dial.go). NewClient then takes the logged-in
// connection and sends APPEND, CREATE (for a TRYCREATE) and NOOP, with
// many commands in flight.
//
// A server's NO or BAD is an *imap.Error and leaves the connection usable;
// the command was refused. Any other error (a broken connection, a reply
// later than the timeout, a BYE) ends the connection and every command in
// flight on it, and leaves their outcome unknown: the server may have
// stored the message. A message over the server's APPENDLIMIT (RFC 7889) is
// refused without being sent, as an *imap.Error with code TOOBIG.
//
// The package never prints and holds no message in memory: a literal is
// copied from the caller's reader to the connection.
package imapappend
