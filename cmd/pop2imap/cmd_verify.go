package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/state"
)

// verifyOptions holds the flags of `pop2imap verify`.
type verifyOptions struct {
	connOptions
	Quick               bool
	State, Report       string
	Progress, LogFormat string
	Window              int
}

// AddFlags registers the flags of verify on fs.
func (o *verifyOptions) AddFlags(fs *pflag.FlagSet) {
	o.connOptions.AddFlags(fs)
	fs.BoolVar(&o.Quick, "quick", false, "trust the journal and the sizes instead of comparing every byte (retrieves nothing)")
	fs.StringVar(&o.State, "state", "", "journal `FILE` to read (default: the one migrate uses for this account pair)")
	fs.StringVar(&o.Report, "report", "", "write a JSON summary, with every message not identical, to `FILE`")
	fs.StringVar(&o.Progress, "progress", "auto", "progress: auto (a bar on a terminal, else a log line every 5s), always or never")
	fs.StringVar(&o.LogFormat, "log-format", "text", "log format on stderr: text or json")
	fs.IntVar(&o.Window, "pop3-window", bridge.DefaultWindow, "RETR commands in flight when the POP3 server allows pipelining")
	// verify only reads: the folder is never created.
	fs.Lookup("folder").Usage = "IMAP `FOLDER` to check (it is only read, never created)"
}

// verifyMismatchError ends a verify run that found messages missing,
// different or unreadable. It exits 1.
type verifyMismatchError struct {
	stats *bridge.VerifyStats
}

func (e *verifyMismatchError) Error() string {
	s := e.stats
	msg := fmt.Sprintf("verify: %d of %d messages are not identical in the IMAP folder (%d missing, %d different, %d errors)",
		s.Checked-s.Same, s.Checked, s.Missing, s.Differ, s.Errors)
	if s.Duplicates > 0 {
		msg += fmt.Sprintf(", and the folder holds %d extra copies (+)", s.Duplicates)
	}
	return msg
}

// runVerifyCommand checks that every POP3 message is in the IMAP folder.
func runVerifyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o verifyOptions
	fs, err := parseFlags("verify", args, stderr, o.AddFlags,
		"Usage: pop2imap verify --pop3 HOST[:PORT] --pop3-user USER --imap HOST[:PORT] --imap-user USER [flags]\n"+
			"Checks that every message of the POP3 mailbox is in the IMAP folder, byte for byte. It only reads.\n"+
			"One line per message: = identical, - missing, * different, ! error, + an extra copy.\n"+
			"Exit 0 when all are identical and none is stored twice, 1 otherwise.\n")
	if fs == nil {
		return err
	}
	if o.Window < 1 {
		return usageErrorf("--pop3-window must be 1 or more")
	}
	if o.Progress != "auto" && o.Progress != "always" && o.Progress != "never" {
		return usageErrorf("--progress must be auto, always or never")
	}
	logger, err := newLogger(o.LogFormat, false, stderr)
	if err != nil {
		return err
	}
	if o.Report != "" {
		if err := checkOutputFile("--report", o.Report); err != nil {
			return err
		}
	}
	pop3Secret, imapSecret, err := o.secrets()
	if err != nil {
		return err
	}
	pop3, imap, err := o.endpoints(pop3Secret, imapSecret)
	if err != nil {
		return err
	}

	journalPath, err := journalFor(o.State, o.Folder, pop3, imap)
	if err != nil {
		return err
	}
	// verify never creates a journal; it reads the one migrate wrote, if any.
	var journal *state.Journal
	if _, statErr := os.Stat(journalPath); statErr == nil {
		journal, err = state.Open(journalPath)
		if err != nil {
			return err
		}
		defer journal.Close()
		if r := journal.Repaired(); r != nil {
			fmt.Fprintln(stderr, "WARN "+r.String())
		}
	} else if o.State != "" {
		return usageErrorf("--state: %v", statErr)
	}

	rep := newVerifyReport(&o, journalPath)
	counts := &verifyCounts{}
	v := &bridge.Verifier{
		POP3: pop3, IMAP: imap, Folder: o.Folder, Journal: journal,
		Quick: o.Quick, Window: o.Window, Timeout: o.Timeout,
		OnResult: func(r bridge.VerifyResult) {
			counts.add(r)
			rep.add(r)
			fmt.Fprintln(stdout, verifyLine(r))
		},
	}
	start := time.Now()
	prog := startVerifyProgress(o.Progress, counts, stderr, logger)
	stats, runErr := v.Run(ctx)
	prog.stop()
	printVerifySummary(stdout, stats, o.Folder, o.Quick, journal != nil)
	if runErr == nil && !stats.OK() {
		runErr = &verifyMismatchError{stats}
	}
	if o.Report != "" {
		if err := rep.write(o.Report, stats, time.Since(start), runErr); err != nil {
			logger.Error("could not write the report", "file", o.Report, "err", err)
			if runErr == nil {
				runErr = err
			}
		}
	}
	return runErr
}

// verifyLine renders one verdict: the mark, the UIDL, then a tab and what
// was found.
func verifyLine(r bridge.VerifyResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%c %s\t#%d", r.Mark, r.UIDL, r.Number)
	switch r.Mark {
	case bridge.VerifySame:
		fmt.Fprintf(&b, " uid %d, found by %s", r.UID, r.By)
		if r.Normalised {
			b.WriteString(", identical once line endings are normalised")
		}
	case bridge.VerifyMissing:
		fmt.Fprintf(&b, " %d bytes", r.Size)
		if r.MessageID != "" {
			fmt.Fprintf(&b, ", Message-ID %s", r.MessageID)
		}
		b.WriteString(": not in the folder")
	case bridge.VerifyDiffer:
		fmt.Fprintf(&b, " %d bytes: uid %d (found by %s) has different bytes", r.Size, r.UID, r.By)
	case bridge.VerifyError:
		fmt.Fprintf(&b, ": %v", r.Err)
	case bridge.VerifyDuplicate:
		fmt.Fprintf(&b, " %d bytes: uid %d is a second copy (the folder holds this message more than once)", r.Size, r.UID)
	}
	return b.String()
}

func printVerifySummary(w io.Writer, s *bridge.VerifyStats, folder string, quick, haveJournal bool) {
	how := "byte for byte (SHA-256)"
	if quick {
		how = "by journal and size (--quick)"
	}
	fmt.Fprintf(w, "\nVerified %d POP3 messages against IMAP folder %q, %s.\n", s.Checked, folder, how)
	if s.FolderMissing {
		fmt.Fprintln(w, "  The folder does not exist.")
	}
	if !haveJournal {
		fmt.Fprintln(w, "  No journal found: matched by Message-ID and content only.")
	}
	fmt.Fprintf(w, "  Identical (=):  %d", s.Same)
	if s.Normalised > 0 {
		fmt.Fprintf(w, "  (%d of them once line endings are normalised, as the IMAP server rewrote them)", s.Normalised)
	}
	fmt.Fprintln(w)
	for _, row := range []struct {
		label string
		n     int
	}{{"Missing (-):", s.Missing}, {"Different (*):", s.Differ}, {"Errors (!):", s.Errors}, {"Duplicates (+):", s.Duplicates}} {
		if row.n > 0 {
			fmt.Fprintf(w, "  %-15s %d\n", row.label, row.n)
		}
	}
}
