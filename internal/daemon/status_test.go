package daemon

import (
	"context"
	"strings"
	"testing"
)

// TestStatusPage: / shows each account, its last cycle and when, what it
// forwarded, the next run, and the last error with the advice the command
// gives for it; the page is self-contained HTML that escapes what it shows.
func TestStatusPage(t *testing.T) {
	good, bad := newMailbox(t, 2), newMailbox(t, 1)
	bad.refuseLogin("AUTH")
	got := newReports("good", "bad")
	svc, clock, _ := newTestService(t, got.add)
	svc.opts.Advice = func(err error) string { return "check the <password> of " + string(Classify(err)) }
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); svc.Wait() }()

	if code, page := scrape(t, svc, "/"); code != 200 || !strings.Contains(page, "0 account(s)") {
		t.Errorf("before any account: %d %q", code, page)
	}
	svc.Apply(ctx, []Account{good.account("good"), bad.account("bad")})
	got.next(t, "good")
	got.next(t, "bad")
	clock.waitForWaiters(t, 2)

	code, page := scrape(t, svc, "/")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	good1, bad1 := section(page, "good"), section(page, "bad")
	for _, want := range []string{`class="ok">ok`, "2 in the last cycle, 2 since the bridge started", "Next run", "(in 5m0s)", "<td>none</td>"} {
		if !strings.Contains(good1, want) {
			t.Errorf("the good account's section lacks %q:\n%s", want, good1)
		}
	}
	for _, want := range []string{`class="failed">failed`, "(auth, 1 in a row)", "0 in the last cycle", "refused by the test",
		"Fix: check the &lt;password&gt; of auth"} {
		if !strings.Contains(bad1, want) {
			t.Errorf("the bad account's section lacks %q:\n%s", want, bad1)
		}
	}
	for _, banned := range []string{"<script", "src=", "<link", "@import", "url("} {
		if strings.Contains(page, banned) {
			t.Errorf("the page refers to an asset or script: %q", banned)
		}
	}
}

// section returns the part of the page about one account.
func section(page, account string) string {
	start := strings.Index(page, `<h2 id="account-`+account+`">`)
	if start < 0 {
		return ""
	}
	rest := page[start:]
	if end := strings.Index(rest, "</table>"); end >= 0 {
		return rest[:end]
	}
	return rest
}
