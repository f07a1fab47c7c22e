// Command pop2imap moves mail from a POP3 mailbox into an IMAP folder, exactly
// once and byte for byte, and can be interrupted and rerun at any point.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/pflag"
)

const usage = `pop2imap moves mail from a POP3 mailbox into an IMAP folder, exactly once.

Usage:
  pop2imap migrate --pop3 HOST[:PORT] --pop3-user USER --imap HOST[:PORT] --imap-user USER [flags]
                     copy the mailbox once; rerun to resume
  pop2imap verify  [same connection flags]
                     check that every POP3 message is in the IMAP folder, byte for byte
  pop2imap bridge  --config FILE | [same connection flags]
                     keep forwarding new mail (SIGTERM exits 0, SIGHUP reloads)
  pop2imap batch   --accounts FILE.csv --state-dir DIR [flags]
                     move many mailboxes, capped per host; rerun to continue
  pop2imap login   --provider gmail|microsoft --client-id ID --token-file FILE [flags]
                     get OAuth2 tokens once, for --pop3/--imap-oauth2-token-file
  pop2imap demo      run the whole pipeline against in-process servers
  pop2imap version

Run 'pop2imap COMMAND --help' for the flags of a command.
Passwords come from POP2IMAP_POP3_PASSWORD and POP2IMAP_IMAP_PASSWORD, or
--pop3-password-file, --imap-password-file, --pop3-password-cmd, --imap-password-cmd;
OAuth2 tokens from --pop3-oauth2-token-file and --imap-oauth2-token-file (see login).

Exit codes: 0 done; 1 error; 2 bad usage; 3 finished, but some messages were
left on the POP3 server (batch: some accounts failed or left mail behind);
130 interrupted.
`

// memoryLimit is the soft limit pop2imap gives the Go runtime unless
// GOMEMLIMIT or GOGC is set. Below it the collector runs as usual, which
// keeps its CPU cost low while messages stream through; near it, as with
// the listing of a maildrop of a million messages, it collects more often
// instead of letting the heap double. A run whose live data outgrows it
// still works, with more time spent collecting.
const memoryLimit = 48 << 20

func main() {
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// A second signal means "stop now": the journal is consistent at
		// every instant, so exiting hard loses nothing.
		<-ctx.Done()
		stop()
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		<-ch
		fmt.Fprintln(os.Stderr, "pop2imap: interrupted twice; exiting at once (the next run resumes)")
		os.Exit(exitInterrupted)
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "migrate":
		err = runMigrateCommand(ctx, args[1:], stdout, stderr)
	case "verify":
		err = runVerifyCommand(ctx, args[1:], stdout, stderr)
	case "bridge":
		err = runBridgeCommand(ctx, args[1:], stdout, stderr)
	case "batch":
		err = runBatchCommand(ctx, args[1:], stdout, stderr)
	case "login":
		err = runLoginCommand(ctx, args[1:], stdout, stderr)
	case "demo":
		err = runDemoCommand(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "pop2imap", version())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = usageErrorf("unknown command %q; the commands are migrate, verify, bridge, batch, login, demo and version", args[0])
	}
	var ue *usageError
	if errors.As(err, &ue) && ue.cmd == "" && len(args) > 0 && args[0] != "help" {
		switch args[0] {
		case "migrate", "verify", "bridge", "batch", "login", "demo":
			ue.cmd = args[0]
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, explain(err))
	}
	return exitCode(err)
}

// parseFlags parses one command's flags, which add defines, with usage
// printed by --help above the flag list. It returns a nil FlagSet and no
// error after --help, and a usage error for a bad flag or for any argument
// left after the flags.
func parseFlags(name string, args []string, stderr io.Writer, add func(*pflag.FlagSet), usage string) (*pflag.FlagSet, error) {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	add(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, nil
		}
		return nil, &usageError{msg: err.Error(), err: err}
	}
	if fs.NArg() > 0 {
		return nil, strayArguments(fs.NArg())
	}
	return fs, nil
}
