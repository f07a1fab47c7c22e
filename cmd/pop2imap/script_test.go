package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript run the test binary as the commands the scripts
// in testdata/script call:
//
//   - pop2imap ARGS: the command itself, exiting with its exit code;
//   - exits N pop2imap ARGS: the command, which must exit with code N (the
//     script then fails only if it does not; testscript alone can tell zero
//     from non-zero, not 2 from 1).
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"pop2imap": func() {
			os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
		},
		"exits": func() {
			if len(os.Args) < 3 || os.Args[2] != "pop2imap" {
				fmt.Fprintln(os.Stderr, "usage: exits N pop2imap ARGS...")
				os.Exit(100)
			}
			want, err := strconv.Atoi(os.Args[1])
			if err != nil {
				fmt.Fprintln(os.Stderr, "exits:", err)
				os.Exit(100)
			}
			if got := run(context.Background(), os.Args[3:], os.Stdout, os.Stderr); got != want {
				fmt.Fprintf(os.Stderr, "exits: pop2imap exited with %d, want %d\n", got, want)
				os.Exit(1)
			}
			os.Exit(0)
		},
	})
}

// TestScripts runs the command-line cases in testdata/script, one file a
// case, as age keeps its own: what a user types, and what they must see.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata/script"})
}
