package batch

import (
	"html"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pop2imap/pop2imap/internal/chromiumtest"
)

var (
	cardRE    = regexp.MustCompile(`id="total-([a-z-]+)"><div class="label">[^<]*</div><div class="value">(.*?)</div>`)
	markupRE  = regexp.MustCompile(`<[^>]*>`)
	rowRE     = regexp.MustCompile(`<tr class="([a-z-]+)" data-account="([^"]*)"`)
	bodyRE    = regexp.MustCompile(`<body[^>]*>`)
	bytesLine = regexp.MustCompile(`<polyline class="bytes" id="chart-bytes" points="([^"]*)"`)
)

// TestHTMLInChromium opens the report as the manager would, from a file in
// headless Chromium, and checks what the page shows once its script ran:
// the totals, the accounts in status order, the failures with reason and
// fix, the chart, and the table sorted by the script when the URL asks.
// It skips where Chromium is not installed, unless POP2IMAP_CHROMIUM=require.
func TestHTMLInChromium(t *testing.T) {
	chromiumtest.Browser(t)
	s := Summarize(append(sampleResults(), hostile), at(90))
	s.Pending = 3
	page := writePage(t, s)
	path := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	assertNoExternalRefs(t, page)
	dom := chromiumtest.DumpDOM(t, "file://"+path)
	assertNoExternalRefs(t, dom)

	body := bodyRE.FindString(dom)
	if !strings.Contains(body, `data-script="ready"`) {
		t.Errorf("the script did not run: %s", body)
	}
	if strings.Contains(body, "data-injected") || strings.Contains(body, "data-sorted") {
		t.Errorf("the body carries what only a hostile name or a #sort could set: %s", body)
	}

	cards := map[string]string{}
	for _, m := range cardRE.FindAllStringSubmatch(dom, -1) {
		cards[m[1]] = markupRE.ReplaceAllString(m[2], "")
	}
	for id, want := range map[string]string{
		"accounts": "11", "done": "3", "left-behind": "1", "failed": "4", "pending": "3",
		"messages": "466", "bytes": "4.2 MiB", "wall": "1h20m0s", "throughput": "0.1 msg/s",
	} {
		if got := html.UnescapeString(cards[id]); got != want {
			t.Errorf("the %s card shows %q, want %q", id, got, want)
		}
	}

	// "<" sorts before letters.
	wantOrder := []string{"failed " + hostile.Account, "failed bob", "failed dave", "failed eve",
		"left-behind carol", "done adam", "done alice", "done Zed"}
	if got := rows(dom); !slices.Equal(got, wantOrder) {
		t.Errorf("rows in the order %q, want %q", got, wantOrder)
	}

	for _, want := range []string{
		"<strong>auth</strong>: 2 account(s), for example <em>dave</em>",
		`<span class="reason">Reason: pop3: PASS refused</span><span class="fix">Fix: check the POP3 password</span>`,
		`class="reason">imap: LOGIN refused</td>`,
		// The name as text: a DOM escapes <, > and & there, but not quotes.
		">" + strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(hostile.Account) + "</td>",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %s", want)
		}
	}

	m := bytesLine.FindStringSubmatch(dom)
	if m == nil {
		t.Fatal("no chart of bytes per second")
	}
	if pts := strings.Fields(m[1]); len(pts) < 4 {
		t.Errorf("the chart's line has %d points: %q", len(pts), m[1])
	}
	for _, want := range []string{">09:00</text>", ">10:20</text>", " KiB/s</text>", " msg/s</text>", "in 80 buckets of 1m0s"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the chart lacks %s", want)
		}
	}

	// The script sorts as the fragment asks: by name, then by bytes,
	// largest first.
	dom = chromiumtest.DumpDOM(t, "file://"+path+"#sort=name")
	if body := bodyRE.FindString(dom); !strings.Contains(body, `data-sorted="name"`) {
		t.Errorf("the script did not sort by name: %s", body)
	}
	byName := slices.Clone(wantOrder)
	slices.SortFunc(byName, func(a, b string) int {
		return strings.Compare(strings.ToLower(strings.Fields(a)[1]), strings.ToLower(strings.Fields(b)[1]))
	})
	if got := rows(dom); !slices.Equal(got, byName) {
		t.Errorf("sorted by name, rows in the order %q, want %q", got, byName)
	}
	if !strings.Contains(dom, `<th data-key="name" data-type="text" aria-sort="ascending">`) {
		t.Error("the name column is not marked as sorted")
	}

	dom = chromiumtest.DumpDOM(t, "file://"+path+"#sort=-bytes")
	// carol 3,000,000; alice 1,400,000; eve 50,000; Zed 5,000; adam 100;
	// the rest 0, in the page's order.
	byBytes := []string{"left-behind carol", "done alice", "failed eve", "done Zed", "done adam",
		"failed " + hostile.Account, "failed bob", "failed dave"}
	if got := rows(dom); !slices.Equal(got, byBytes) {
		t.Errorf("sorted by bytes, largest first, rows in the order %q, want %q", got, byBytes)
	}
}

// rows lists the table's rows as "status name", in the DOM's order.
func rows(dom string) []string {
	var out []string
	for _, m := range rowRE.FindAllStringSubmatch(dom, -1) {
		out = append(out, m[1]+" "+html.UnescapeString(m[2]))
	}
	return out
}
