package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/pop2imap/pop2imap/internal/batch"
	"github.com/pop2imap/pop2imap/internal/humanize"
)

const batchReportUsage = `Usage: pop2imap batch report --state-dir DIR [--report FILE.json] [--html FILE]

Merges the results of every shard in DIR (results*.jsonl) into one summary
on stdout, and optionally one JSON report and one self-contained HTML page.

Flags:
`

// runBatchReport is `pop2imap batch report`.
func runBatchReport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var dir, report, html, accounts string
	fs, err := parseFlags("batch report", args, stderr, func(fs *pflag.FlagSet) {
		fs.StringVar(&dir, "state-dir", "", "the batch's state `DIR`, shared by its shards")
		fs.StringVar(&report, "report", "", "write the totals and every account as JSON to `FILE`")
		fs.StringVar(&html, "html", "", "write a self-contained HTML report to `FILE`")
		fs.StringVar(&accounts, "accounts", "", "the accounts `FILE`, to count the accounts never attempted")
	}, batchReportUsage)
	if fs == nil {
		return err
	}
	if dir == "" {
		return usageErrorf("missing --state-dir")
	}
	var all []batch.Account
	if accounts != "" {
		var o batchOptions
		o.Accounts = accounts
		o.conn.POP3TLS, o.conn.IMAPTLS = "implicit", "implicit"
		if all, err = o.load(); err != nil {
			return err
		}
	}
	s, err := summarizeDir(dir, all)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d accounts: %d done, %d left messages behind, %d failed, %d never attempted; %d messages appended, %s\n",
		s.Total(), s.Done, s.LeftBehind, s.Failed, s.Pending, s.Appended, humanize.Bytes(s.Bytes))
	return writeSummary(s, report, html)
}

// summarizeDir summarizes every result in the state directory dir; with
// accounts given, only theirs, and the ones with no result are pending.
func summarizeDir(dir string, accounts []batch.Account) (batch.Summary, error) {
	results, _, err := batch.ReadResults(dir)
	if err != nil {
		return batch.Summary{}, err
	}
	if accounts != nil {
		ids := make(map[string]bool, len(accounts))
		for _, a := range accounts {
			ids[a.ID] = true
		}
		kept := results[:0]
		seen := map[string]bool{}
		for _, r := range results {
			if ids[r.ID] {
				kept = append(kept, r)
				seen[r.ID] = true
			}
		}
		results = kept
		s := batch.Summarize(results, time.Now())
		s.Pending = len(accounts) - len(seen)
		return s, nil
	}
	return batch.Summarize(results, time.Now()), nil
}

// writeSummary writes the JSON and HTML reports that were asked for.
func writeSummary(s batch.Summary, report, html string) error {
	if report != "" {
		if err := writeAtomic(report, func(w io.Writer) error { return batch.WriteJSON(w, s) }); err != nil {
			return &settingError{setting: "--report", err: err, hint: "choose a path in a directory you can write"}
		}
	}
	if html != "" {
		if err := writeAtomic(html, func(w io.Writer) error { return batch.WriteHTML(w, s) }); err != nil {
			return &settingError{setting: "--html", err: err, hint: "choose a path in a directory you can write"}
		}
	}
	return nil
}
