package batch

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pop2imap/pop2imap/internal/errkind"
)

// TestLatest proves that an account's latest attempt is the one that
// ended last, wherever it is in the logs, and of two that ended together
// the later one read.
func TestLatest(t *testing.T) {
	late := result("a", Done, 9)
	tieFirst, tieSecond := result("b", Failed, 5), result("b", Done, 5)
	latest := Latest([]Result{late, result("a", Failed, 3), tieFirst, tieSecond, result("c", LeftBehind, 1)})
	if len(latest) != 3 {
		t.Fatalf("%d accounts, want 3", len(latest))
	}
	for id, want := range map[string]Status{"a": Done, "b": Done, "c": LeftBehind} {
		if got := latest[id].Status; got != want {
			t.Errorf("%s: latest status %s, want %s", id, got, want)
		}
	}
	if len(Latest(nil)) != 0 {
		t.Error("no results give latest attempts")
	}
}

// TestSelect proves which accounts each selection runs, in file order.
func TestSelect(t *testing.T) {
	var accounts []Account
	for _, id := range []string{"done", "failed", "left", "new", "mended", "broke"} {
		accounts = append(accounts, Account{ID: id, Name: id})
	}
	latest := Latest([]Result{
		result("done", Done, 1),
		result("failed", Failed, 1),
		result("left", LeftBehind, 1),
		result("mended", Failed, 1), result("mended", Done, 2),
		result("broke", Done, 1), result("broke", Failed, 2),
		result("gone", Failed, 1), // an account no longer in the file
	})
	for _, tt := range []struct {
		only string
		want string
	}{
		{"", "[done failed left new mended broke]"},
		{OnlyFailed, "[failed left broke]"},
		{OnlyPending, "[new]"},
	} {
		got, err := Select(accounts, latest, tt.only)
		if err != nil {
			t.Fatalf("%q: %v", tt.only, err)
		}
		var names []string
		for _, a := range got {
			names = append(names, a.Name)
		}
		if fmt.Sprint(names) != tt.want {
			t.Errorf("only %q: %v, want %s", tt.only, names, tt.want)
		}
	}
	_, err := Select(accounts, latest, "failures")
	var oerr *OnlyError
	if !errors.As(err, &oerr) || !strings.Contains(err.Error(), "want failed or pending") || errkind.Of(err) != errkind.Usage {
		t.Errorf("an unknown selection: %v; want an *OnlyError listing the choices", err)
	}
	if got, _ := Select(accounts, nil, OnlyPending); len(got) != len(accounts) {
		t.Errorf("without results, %d of %d accounts are pending", len(got), len(accounts))
	}
}

// TestRerunFlow proves the parts together as the command uses them: load
// the file, run a shard, log the results, and on the rerun select by what
// the logs of every shard say, keyed by the accounts' IDs.
func TestRerunFlow(t *testing.T) {
	accounts := mustLoad(t, accountsFile(40, nil), Defaults{})
	dir := t.TempDir()
	for i := range 2 {
		shard := Shard{Index: i, Count: 2}
		l, err := OpenLog(dir, shard)
		if err != nil {
			t.Fatal(err)
		}
		for n, a := range accounts {
			if !shard.Has(a) {
				continue
			}
			r := result(a.ID, Done, 1)
			if n%5 == 0 {
				r.Status = Failed
			}
			if err := l.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
	}
	results, _ := readResults(t, dir)
	failed, err := Select(accounts, Latest(results), OnlyFailed)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 8 {
		t.Fatalf("%d failed accounts selected, want 8", len(failed))
	}
	for _, a := range failed {
		if (a.Line-2)%5 != 0 {
			t.Errorf("%s (line %d) selected, but it did not fail", a.Name, a.Line)
		}
	}
	if pending, _ := Select(accounts, Latest(results), OnlyPending); len(pending) != 0 {
		t.Errorf("%d accounts pending after both shards ran", len(pending))
	}
}
