// Package bridge is pop2imap's engine: it moves the messages of one POP3
// mailbox into one IMAP folder, exactly once and byte for byte, and checks
// afterwards that it did.
//
// # What it promises
//
//   - No mail lost. A message is deleted from POP3 only after the IMAP
//     server confirmed its APPEND and the journal (package state) has the
//     record on disk. DELEs take effect at QUIT, and a session that fails
//     drops its connection without QUIT, so the server forgets them.
//   - No duplicates. The journal records each APPEND's intent before it is
//     sent. Any message the journal cannot vouch for is looked for in the
//     folder before it is appended: the folder, not the journal, is the
//     ground truth.
//   - Bytes unchanged. What is stored is what RETR delivered, after
//     dot-unstuffing; messages stream through a spool that holds a small
//     one in memory and a large one in an unlinked temporary file.
//   - Bounded memory and disk, whatever the servers send.
//
// # How one message flows
//
//	LIST/UIDL → plan (journal) → RETR → spool → journal: appending
//	  → [folder index: already there? adopt] → APPEND → journal: appended
//	  → Journal.Sync → DELE → QUIT → journal: deleted
//
// The files follow that flow:
//
//   - config.go: Config, Stats and the events a run reports.
//   - session.go: Migrator, one POP3 session from login to QUIT, with its
//     retries.
//   - listing.go, plan.go: the listing and what to do with each message.
//   - pipeline.go: pipelined RETR into the spool, and the one place that
//     deletes (flushDeletes).
//   - appender.go, window.go: APPENDs on internal/imapappend connections,
//     with LITERAL+ and an in-flight window adapted to the link.
//   - folderindex.go, target.go, settle.go: the folder index and the one
//     matcher that decides whether the folder already holds a message, for
//     migrate and verify alike.
//   - verify.go: Verifier, which only reads and reports one mark per
//     message.
//   - dial.go, auth.go, endpoint.go, greeting.go, folder.go: connecting,
//     TLS, login (one flow for go-imap's client and the APPEND
//     connections), folder names, and the folder checks, written once
//     over either kind of connection (folderConn).
//   - probe.go: ProbeAccount and StatPOP3, which count and look without
//     changing anything (batch --check and its estimate).
//
// The package never prints: it counts into Stats and reports Events, and
// cmd/pop2imap draws them.
package bridge
