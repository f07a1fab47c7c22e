package state

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// maxSlugLen bounds the readable part of a journal's file name, leaving room
// in the usual 255-byte limit for the hash and the ".lock" and compaction
// suffixes.
const maxSlugLen = 100

// DefaultPath returns the journal path for copying one POP3 account into one
// IMAP folder: $XDG_STATE_HOME/pop2imap/<name>.journal, or
// ~/.local/state/pop2imap/<name>.journal when XDG_STATE_HOME is unset or not
// absolute. The name reads like
// "alice@pop.example.com_995-to-bob@imap.example.com_993-INBOX-3f2a9c0d1e4b":
// a slug of the five fields that keeps only [A-Za-z0-9._@-], cut to 100 bytes,
// then the first 12 hex digits of the SHA-256 of the fields joined with NUL,
// so different accounts or folders never share a journal even when their slugs
// are the same.
func DefaultPath(pop3Addr, pop3User, imapAddr, imapUser, folder string) (string, error) {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" || !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", errors.New("state: cannot choose a journal path: neither XDG_STATE_HOME nor HOME is set; give the journal path explicitly")
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "pop2imap", JournalName(pop3Addr, pop3User, imapAddr, imapUser, folder)), nil
}

// PairHash is the SHA-256 of the five fields that name a journal, joined
// with NUL. It is the identity of one POP3 account copied into one IMAP
// folder: the journal's name carries its first 12 hex digits, and a batch
// names its accounts by it.
func PairHash(pop3Addr, pop3User, imapAddr, imapUser, folder string) [sha256.Size]byte {
	return sha256.Sum256([]byte(strings.Join([]string{pop3Addr, pop3User, imapAddr, imapUser, folder}, "\x00")))
}

// JournalName is the file name of the journal of one pair, without its
// directory: the readable slug, then the first 12 hex digits of PairHash,
// then ".journal" (see DefaultPath). Every place that names a journal by
// its pair calls it, so that one pair has one name wherever it is kept.
func JournalName(pop3Addr, pop3User, imapAddr, imapUser, folder string) string {
	sum := PairHash(pop3Addr, pop3User, imapAddr, imapUser, folder)
	slug := slugify(pop3User + "@" + pop3Addr + "-to-" + imapUser + "@" + imapAddr + "-" + folder)
	return slug + "-" + hex.EncodeToString(sum[:])[:12] + ".journal"
}

// slugify keeps the characters that are safe and readable in a file name,
// turns each run of others into one "_", and never starts with "." or "-"
// (a hidden file, or one that looks like a command-line flag).
func slugify(s string) string {
	var b strings.Builder
	replaced := false
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '.' || r == '_' || r == '@' || r == '-'
		if !ok {
			if !replaced {
				b.WriteByte('_')
			}
			replaced = true
			continue
		}
		if b.Len() == 0 && (r == '.' || r == '-') {
			r = '_'
		}
		b.WriteRune(r)
		replaced = false
	}
	out := b.String()
	if len(out) > maxSlugLen {
		out = out[:maxSlugLen]
	}
	return out
}
