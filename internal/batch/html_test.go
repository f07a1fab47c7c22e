package batch

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

// hostile is an account whose name, error and advice try to break out of
// the page: each would run a script or load an image if it were written
// unescaped.
var hostile = Result{Account: `<script>document.body.setAttribute("data-injected","1")</script>`, ID: "h",
	Start: at(1), End: at(2), Status: Failed, Kind: "config",
	Error:  `bad "><img src=x onerror=alert(2)> error`,
	Advice: `</td><script>alert(3)</script>`}

func writePage(t *testing.T, s Summary) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, s); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestHTMLEscapes: names, errors and advice appear as text, never as
// markup, in the table, in the failures and in the attributes.
func TestHTMLEscapes(t *testing.T) {
	page := writePage(t, Summarize(append(sampleResults(), hostile), at(90)))
	if n := strings.Count(page, "<script"); n != 1 {
		t.Errorf("%d <script elements, want only the page's own", n)
	}
	for _, bad := range []string{"<img", "</td><script>", `"><img`} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q unescaped", bad)
		}
	}
	for _, want := range []string{
		`<td data-v="&lt;script&gt;document.body.setAttribute(&#34;data-injected&#34;,&#34;1&#34;)&lt;/script&gt;" class="name">` +
			`&lt;script&gt;document.body.setAttribute(&#34;data-injected&#34;,&#34;1&#34;)&lt;/script&gt;</td>`,
		`Reason: bad &#34;&gt;&lt;img src=x onerror=alert(2)&gt; error`,
		`Fix: &lt;/td&gt;&lt;script&gt;alert(3)&lt;/script&gt;`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}

// TestHTMLSelfContained: nothing on the page is fetched from anywhere: no
// src or href to a URL, no CSS url() or @import, and a policy that forbids
// any source but the page's own style and its one script, by hash.
func TestHTMLSelfContained(t *testing.T) {
	page := writePage(t, Summarize(sampleResults(), at(90)))
	assertNoExternalRefs(t, page)
	sum := sha256.Sum256([]byte(pageScript))
	csp := `content="default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;; script-src &#39;sha256-` +
		base64.StdEncoding.EncodeToString(sum[:]) + `&#39;`
	if !strings.Contains(page, csp) {
		t.Errorf("the page lacks the policy %s", csp)
	}
	if !strings.Contains(page, "<script>"+pageScript+"</script>") {
		t.Error("the script on the page is not byte for byte the one the policy's hash admits")
	}
}

// A tag, and an attribute within one: enough of HTML's syntax to read the
// attributes of a page that quotes its values, as html/template and a DOM
// dump do.
var (
	tagRE  = regexp.MustCompile(`<[a-zA-Z][^\s/>]*(?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>"']+))?)*\s*/?>`)
	attrRE = regexp.MustCompile(`\s([^\s=>/]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>"']+))?`)
	// fetching names the attributes that make a browser fetch something.
	fetching = map[string]bool{"src": true, "href": true, "xlink:href": true, "srcset": true,
		"action": true, "formaction": true, "poster": true, "data": true, "background": true, "manifest": true}
	urlValue = regexp.MustCompile(`(?i)^["']?\s*([a-z][a-z0-9+.-]*:|//)`)
)

// externalRefs lists what on page makes a browser fetch anything: an
// attribute that fetches, another attribute whose value is a URL with a
// scheme or a host (data-*, aria-* and a meta's content are text, where
// "imap: LOGIN refused" is no URL), and CSS url() or @import.
func externalRefs(page string) []string {
	var found []string
	for _, tag := range tagRE.FindAllString(page, -1) {
		for _, a := range attrRE.FindAllStringSubmatch(tag, -1) {
			name := strings.ToLower(a[1])
			isText := name == "content" || strings.HasPrefix(name, "data-") || strings.HasPrefix(name, "aria-")
			if fetching[name] || !isText && urlValue.MatchString(a[2]) {
				found = append(found, tag)
			}
		}
	}
	return append(found, regexp.MustCompile(`(?i)url\s*\(|@import`).FindAllString(page, -1)...)
}

func assertNoExternalRefs(t *testing.T, page string) {
	t.Helper()
	if refs := externalRefs(page); refs != nil {
		t.Errorf("the page refers to outside resources: %q", refs)
	}
}

// TestExternalRefs: the check above finds each way a page could fetch,
// and passes a page with none.
func TestExternalRefs(t *testing.T) {
	for _, page := range []string{
		`<img src="https://cdn.example/x.png">`,
		`<p><a class=x href=//example.org/>x</a></p>`,
		`<link rel="stylesheet" href="report.css">`,
		`<svg><image xlink:href="data:image/png;base64,AA"></image></svg>`,
		`<div style="background: URL(x.png)"></div>`,
		`<style>@import "x.css";</style>`,
		`<iframe srcdoc="" src='http://127.0.0.1/'></iframe>`,
	} {
		if externalRefs(page) == nil {
			t.Errorf("no outside resource found in %s", page)
		}
	}
	clean := `<td data-v="bad &#34;&gt;&lt;img src=x" class="reason">imap: LOGIN refused, see https://example.org/</td>`
	if refs := externalRefs(clean); refs != nil {
		t.Errorf("outside resources found in %s: %q", clean, refs)
	}
}

// TestHTMLNothingYet: a batch with nothing attempted still makes a page,
// with the pending accounts and no chart.
func TestHTMLNothingYet(t *testing.T) {
	s := Summarize(nil, at(0))
	s.Pending = 12
	page := writePage(t, s)
	for _, want := range []string{`<p id="chart">No attempt yet.</p>`, `<p id="failures">No account failed.</p>`,
		`id="total-pending"><div class="label">Pending</div><div class="value">12</div>`,
		`id="total-accounts"><div class="label">Accounts</div><div class="value">12</div>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(page, "<svg") {
		t.Error("a chart of nothing")
	}
}

// TestAxis: the scale's top covers the largest value with round steps in
// the largest unit that keeps the numbers at 1 or more.
func TestAxis(t *testing.T) {
	units := []string{"B/s", "KiB/s", "MiB/s"}
	for _, tc := range []struct {
		max    float64
		top    float64
		labels string
	}{
		{0, 1, "0 B/s,1 B/s"},
		{900, 1000, "0 B/s,500 B/s,1000 B/s"},               // a step of 225 rounds up to 500
		{700, 800, "0 B/s,200 B/s,400 B/s,600 B/s,800 B/s"}, // 175 rounds up to 200
		{3 * 1024 * 1024, 3 * 1024 * 1024, "0 MiB/s,1 MiB/s,2 MiB/s,3 MiB/s"},
		{1.5 * 1024 * 1024, 1.5 * 1024 * 1024, "0.0 MiB/s,0.5 MiB/s,1.0 MiB/s,1.5 MiB/s"},
		{31_000, 40 * 1024, "0 KiB/s,10 KiB/s,20 KiB/s,30 KiB/s,40 KiB/s"},
	} {
		top, ticks := axis(tc.max, units, 1024)
		var labels []string
		for _, tk := range ticks {
			labels = append(labels, tk.Label)
		}
		if top != tc.top || strings.Join(labels, ",") != tc.labels {
			t.Errorf("axis(%v) = %v, %q; want %v, %q", tc.max, top, labels, tc.top, tc.labels)
		}
		if top < tc.max {
			t.Errorf("axis(%v): top %v is below the largest value", tc.max, top)
		}
	}
}

func TestGroupDigits(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 100000: "100,000"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
}
