package main

import (
	"strings"
	"testing"

	"github.com/pop2imap/pop2imap/internal/chromiumtest"
)

// TestStatusPageInChromium loads the bridge's status page in headless
// Chromium, as a user would open it, and checks that the rendered page
// names the account, the folder and what was forwarded. It skips where
// Chromium is not installed, unless POP2IMAP_CHROMIUM=require (as in CI).
func TestStatusPageInChromium(t *testing.T) {
	chromiumtest.Browser(t) // skip before starting the servers
	e := newBridgeEnv(t, 2)
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	logs := newLogWatch()
	startBridge(t, logs, append(e.flags("Gmail"), "--interval", "1h", "--metrics-addr", "127.0.0.1:0")...)
	line, next := logs.waitFor(t, 0, `msg="serving metrics"`)
	addr := metricsAddrRE.FindStringSubmatch(line)[1]
	logs.waitForCycles(t, next, "default", map[string]int{"appended": 2})

	dom := chromiumtest.DumpDOM(t, "http://"+addr+"/")
	for _, want := range []string{"<title>pop2imap bridge</title>", `id="account-default"`, "<code>Gmail</code>",
		"2 in the last cycle, 2 since the bridge started", `class="ok"`, "every 1h0m0s"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %q:\n%s", want, dom)
		}
	}
}
