// Package state is pop2imap's checkpoint journal: the record of which POP3
// messages have been copied into IMAP, and how far each copy got, that lets a
// run which crashed, was cancelled, or lost its connection resume without
// copying any message twice or deleting any message that was not copied.
//
// # Why each step is recorded
//
// The pipeline moves one message through these steps and records each one
// durably before it acts on it:
//
//   - Appending is recorded (by [Journal.BeginAppend]) before the IMAP APPEND
//     is sent. It carries everything needed to recognise the message later:
//     its UIDL, both sizes, both SHA-256 hashes, its Message-ID and its
//     internal date. If the run dies after this record, the APPEND may or may
//     not have reached the server, so the next run looks for the message in
//     the folder instead of appending it blindly a second time.
//
//   - Appended is recorded (by [Journal.MarkAppended]) once the server has
//     confirmed the APPEND, with the APPENDUID when the server gave one. Only
//     an Appended message may be deleted from POP3, and a later run skips it
//     without searching the folder.
//
//   - Refused is recorded (by [Journal.MarkRefused]) when the server rejected
//     the APPEND, with the server's text. The message stays in the POP3
//     maildrop and is reported. Trying it again later is a new entry (a new
//     BeginAppend), so the refusal stays as history.
//
//   - Deleted is recorded (by [Journal.MarkDeleted]) once the message has been
//     deleted from the POP3 maildrop, ending its life in the journal. If the
//     same UIDL shows up again (a QUIT that failed, so the deletion was never
//     committed), the entry shows that the copy already exists; deleting it
//     again needs no new record.
//
//   - Adopted is not a step of its own: [Journal.Adopt] creates an entry
//     directly at step Appended, with the UID of a copy that the folder
//     already held although the journal did not know the message (a lost
//     journal, or another way of copying). [Journal.AddBaseline] creates
//     entries directly at step Baseline: messages marked done without
//     being copied, so that a bridge copies only mail that arrives later.
//
//   - [Journal.MarkAppendedLater] is MarkAppended without waiting for its
//     fsync; the next fsync of any record, or [Journal.Sync], makes it
//     durable, and the pipeline calls Sync before its first DELE.
//
// The allowed transitions are Appending → Appended, Appending → Refused and
// Appended → Deleted. Any other call is a programming error: the method
// returns an error and writes nothing.
//
// # File format
//
// A journal is a text file, mode 0600, in a directory created with mode 0700
// if missing. Its first line is a header naming the format version:
//
//	pop2imap-journal 1
//
// Every later line is one record:
//
//	<crc> <json>
//
// where <crc> is the CRC-32C (Castagnoli) of the JSON text as 8 lowercase hex
// digits. The JSON object uses short keys: "i" entry ID, "s" step
// ("appending", "appended", "refused", "deleted"), "u" UIDL, "l" size from
// LIST, "z" exact size, "h" SHA-256 and "n" normalised SHA-256 (hex), "m"
// Message-ID, "d" internal date and "t" time of the step (RFC 3339), "uv"
// UIDVALIDITY, "uid" UID, "r" the server's reason for a refusal. A string that
// is not valid UTF-8 is written as {"x":"<hex>"} so that it survives exactly.
//
// A record that carries "u" is an entry record: it creates a new entry with
// all its fields and the step it names. BeginAppend writes one with step
// "appending". Every other record is a step record that carries only the ID,
// the step and that step's own fields, and replay applies it to the entry
// created earlier. Appending to the file is the only way the journal changes
// while it is open: each method writes its records with one write and one
// fsync before it returns, so the cost per message does not grow with the
// size of the journal.
//
// # Recovery rules
//
// A new journal is not fsync'd when it is created: until a record is
// durable a crash leaves nothing that needs it, and an empty or half-written
// header is started again. The first fsync after an [Open] that found no
// record makes the file, then its name in the directory, durable, before
// the record that asked for it is acknowledged.
//
// [Open] takes an exclusive lock (flock on a separate "<path>.lock" file, so
// that the lock survives compaction replacing the journal file) and replays
// every record:
//
//   - A torn last record, which is what a crash in the middle of a write
//     leaves behind, is cut off and the truncation is fsync'd. A last line is
//     torn when it has no trailing newline or fails its checksum. Such a
//     record was never acknowledged to the caller, so nothing acted on it.
//     The cut is reported by [Journal.Repaired], because a file cut short by
//     hand looks the same, and the caller says so.
//   - A record that fails its checksum with more records after it means the file was damaged or cut and then written to again.
//     Open keeps every record before it, saves a copy of the whole file as
//     "<path>.damaged-<time>", cuts the journal at the damaged record, and
//     reports the cut by [Journal.Repaired]. Nothing is lost by this: the
//     pipeline treats a message the journal does not know by looking for it
//     in the IMAP folder first (the folder is the ground truth), so messages
//     the dropped records described are found there, not copied again.
//   - Any other bad record (a step record for an unknown entry, a transition
//     that is not allowed, an entry created twice) means the file was built
//     wrongly rather than damaged. Open refuses it with a [*CorruptError]
//     naming the byte offset; moving the file aside starts over safely, for
//     the same reason.
//   - When records superseded by later records of the same entry outnumber
//     the live entries, Open compacts the journal: it writes every entry as a
//     single entry record holding its current state to a temporary file in the
//     same directory, fsyncs it, renames it over the journal and fsyncs the
//     directory. A crash at any point leaves either the old or the new file,
//     and both hold the same state.
//
// # Memory
//
// The journal holds no entry in memory, so that a journal of a million
// messages costs the process what one of ten does. [Open] builds an index
// of the entries: a table of fixed-size rows, one per entry, that say
// where the entry's records are, and a hash table from UIDL to row. Both
// stay in memory while the journal is small (a 16 KiB table, 1,024 rows)
// and then move to two temporary files beside the journal (removed at once,
// so they never show up in the directory). [Journal.ByUIDL] and [Journal.Each] read entries
// back from the journal through it. The operating system's page cache,
// not the process, keeps what is read often. Entries, which returns them
// all at once, is for small journals and tests.
//
// After a write or fsync fails, the content of the file is unknown, so the
// journal refuses all further changes and every later call returns the same
// error. Reopening the journal repairs a torn tail. A record whose fsync
// failed may or may not be present after reopening; the pipeline treats an
// Appending entry as "maybe appended" in either case.
//
// The journal never stores a password.
package state
