package batch

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pop2imap/pop2imap/internal/humanize"
)

// The page is one file with nothing to fetch: the style and the sorting
// script are inline, the chart is SVG drawn here, and a Content Security
// Policy forbids every other source. The policy admits the script by its
// hash, so that no other script could run even if a name slipped past the
// escaping.
var (
	//go:embed report.html.tmpl
	pageSource string
	//go:embed report.js
	pageScript string

	pageTemplate = template.Must(template.New("report").Parse(pageSource))
	scriptHash   = func() string {
		sum := sha256.Sum256([]byte(pageScript))
		return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
	}()
)

// pageView is what the template shows, every number already written out.
type pageView struct {
	Generated string
	Period    string
	CSP       string
	Script    template.JS
	Cards     []card
	Failures  []Failure
	Chart     *chart
	Rows      []row
	Pending   int
}

// card is one of the big numbers at the top of the page.
type card struct {
	ID, Label, Value, Unit, Note, Class string
}

// row is one account in the table. Each cell has its text and, for the
// script, the value it sorts by.
type row struct {
	Name, Status, Class, Kind, Reason, Advice   string
	Rank, Order                                 int
	Appended, Left, Bytes, Attempts             int64
	AppendedText, LeftText, BytesText, Duration string
	Seconds                                     string
}

// WriteHTML writes s as one self-contained HTML page for a person: the
// totals, the failures with their reasons and fixes, the throughput over
// time, and a table of every account, which sorts by clicking a column's
// heading. Every name and error text is escaped.
func WriteHTML(w io.Writer, s Summary) error {
	if err := pageTemplate.Execute(w, newPageView(&s)); err != nil {
		return fmt.Errorf("batch: write the HTML report: %w", err)
	}
	return nil
}

const stampLayout = "2006-01-02 15:04:05 MST"

func newPageView(s *Summary) *pageView {
	v := &pageView{
		Generated: s.Generated.Format(stampLayout),
		CSP: "default-src 'none'; style-src 'unsafe-inline'; script-src '" + scriptHash + "'; " +
			"base-uri 'none'; form-action 'none'",
		Script:   template.JS(pageScript),
		Failures: s.Failures,
		Chart:    newChart(s),
		Pending:  s.Pending,
	}
	if !s.Start.IsZero() {
		v.Period = s.Start.Format(stampLayout) + " to " + s.End.Format(stampLayout)
	}
	wall := time.Duration(s.WallSeconds * float64(time.Second))
	v.Cards = []card{
		{ID: "accounts", Label: "Accounts", Value: groupDigits(int64(s.Total())),
			Note: fmt.Sprintf("%s attempted in %s attempts", groupDigits(int64(s.Attempted)), groupDigits(int64(s.Attempts)))},
		{ID: "done", Label: "Done", Value: groupDigits(int64(s.Done)), Class: "done"},
		{ID: "left-behind", Label: "Left behind", Value: groupDigits(int64(s.LeftBehind)), Class: "left-behind",
			Note: groupDigits(s.MessagesLeftBehind) + " messages still on the POP3 servers"},
		{ID: "failed", Label: "Failed", Value: groupDigits(int64(s.Failed)), Class: "failed"},
		{ID: "pending", Label: "Pending", Value: groupDigits(int64(s.Pending)), Note: "never attempted"},
		{ID: "messages", Label: "Messages moved", Value: groupDigits(s.Appended),
			Note: fmt.Sprintf("%s recovered, %s already there", groupDigits(s.Recovered), groupDigits(s.Adopted))},
		withUnit(card{ID: "bytes", Label: "Data moved"}, humanize.Bytes(s.Bytes)),
		{ID: "wall", Label: "Wall time", Value: formatDuration(wall)},
		{ID: "throughput", Label: "Throughput", Value: strconv.FormatFloat(s.MessagesPerSecond, 'f', 1, 64), Unit: "msg/s",
			Note: humanize.Bytes(int64(s.BytesPerSecond)) + "/s"},
	}
	for i, a := range s.Accounts {
		v.Rows = append(v.Rows, row{
			Name: a.Account, Status: string(a.Status), Class: statusClass(a.Status), Kind: a.Kind,
			Reason: a.Error, Advice: a.Advice,
			Rank: statusRank(a.Status), Order: i,
			Appended: a.Appended, AppendedText: groupDigits(a.Appended),
			Left: a.LeftCount, LeftText: groupDigits(a.LeftCount),
			Bytes: a.Bytes, BytesText: humanize.Bytes(a.Bytes),
			Attempts: int64(a.Attempts),
			Seconds:  strconv.FormatFloat(a.Seconds, 'f', 3, 64),
			Duration: formatDuration(time.Duration(a.Seconds * float64(time.Second))),
		})
	}
	return v
}

// withUnit sets c's value from a quantity written as "number unit", so
// that the page can show the unit smaller than the number.
func withUnit(c card, quantity string) card {
	c.Value, c.Unit, _ = strings.Cut(quantity, " ")
	return c
}

// statusClass is the CSS class of a status: its own name, or "failed"
// for a status this version does not know, as Summarize counts it.
func statusClass(s Status) string {
	switch s {
	case Done, LeftBehind:
		return string(s)
	}
	return string(Failed)
}

// groupDigits writes n with a comma between groups of three digits.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// formatDuration writes d to the second, or to the millisecond below one
// second.
func formatDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
