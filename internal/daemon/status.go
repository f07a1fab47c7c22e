package daemon

import (
	"html/template"
	"net/http"
	"sort"
	"time"
)

// accountView is one account as the status page shows it.
type accountView struct {
	Name, From, To, Folder, Delete string
	Interval                       string
	Cycled                         bool
	LastCycle, LastCycleAgo        string
	OK                             bool
	Kind                           string
	Failures                       int
	LastForwarded, Forwarded       int64
	NextRun, NextIn                string
	LastErr, LastErrAt, Advice     string
}

// statusPage is plain HTML with its style inline and no script or other
// asset, so that it works from any browser on a machine with no internet.
var statusPage = template.Must(template.New("status").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>pop2imap bridge</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { text-align: left; padding: .25em .8em .25em 0; vertical-align: top; }
th { color: #555; font-weight: normal; }
.ok { color: #176e2c; font-weight: bold; }
.failed { color: #a31515; font-weight: bold; }
.waiting { color: #555; font-weight: bold; }
code { background: #f3f3f3; padding: 0 .2em; }
</style>
</head>
<body>
<h1>pop2imap bridge</h1>
<p>Now {{.Now}}. {{len .Accounts}} account(s). This page reloads every 30 seconds; <a href="/metrics">/metrics</a>, <a href="/healthz">/healthz</a>.</p>
{{range .Accounts}}
<h2 id="account-{{.Name}}">{{.Name}}</h2>
<table>
<tr><th>Forwards</th><td>{{.From}} → {{.To}}, folder <code>{{.Folder}}</code>; on the old server: {{.Delete}}</td></tr>
<tr><th>Last cycle</th><td>{{if .Cycled}}{{if .OK}}<span class="ok">ok</span>{{else}}<span class="failed">failed</span> ({{.Kind}}, {{.Failures}} in a row){{end}} at {{.LastCycle}} ({{.LastCycleAgo}} ago){{else}}<span class="waiting">running its first cycle</span>{{end}}</td></tr>
<tr><th>Forwarded</th><td>{{.LastForwarded}} in the last cycle, {{.Forwarded}} since the bridge started</td></tr>
<tr><th>Next run</th><td>{{if .NextRun}}{{.NextRun}} (in {{.NextIn}}){{else}}after the current cycle{{end}}; every {{.Interval}}</td></tr>
<tr><th>Last error</th><td>{{if .LastErr}}{{.LastErr}} <small>({{.LastErrAt}})</small>{{if .Advice}}<br>Fix: {{.Advice}}{{end}}{{else}}none{{end}}</td></tr>
</table>
{{end}}
</body>
</html>
`))

// serveStatus renders the status page.
func (s *Service) serveStatus(w http.ResponseWriter, r *http.Request) {
	now := s.opts.Clock.Now()
	const stamp = "2006-01-02 15:04:05 MST"
	s.mu.Lock()
	views := make([]accountView, 0, len(s.loops))
	for _, h := range s.loops {
		a := &h.loop.acct
		st := h.loop.status
		st.mu.Lock()
		v := accountView{
			Name:     a.Name,
			From:     a.POP3.Username + "@" + a.POP3.Addr,
			To:       a.IMAP.Username + "@" + a.IMAP.Addr,
			Folder:   a.Bridge.Folder,
			Delete:   a.DeletePolicy(),
			Interval: FormatDuration(st.interval),
			Cycled:   !st.lastEnd.IsZero(),
			OK:       st.failures == 0, Kind: string(st.kind), Failures: st.failures,
			LastForwarded: st.lastAppended, Forwarded: st.forwarded,
			LastErr: st.lastErr, Advice: st.lastAdvice,
		}
		if v.Cycled {
			v.LastCycle, v.LastCycleAgo = st.lastEnd.Format(stamp), now.Sub(st.lastEnd).Round(time.Second).String()
		}
		if !st.nextRun.IsZero() {
			v.NextRun, v.NextIn = st.nextRun.Format(stamp), max(st.nextRun.Sub(now), 0).Round(time.Second).String()
		}
		if st.lastErr != "" {
			v.LastErrAt = st.lastErrAt.Format(stamp)
		}
		st.mu.Unlock()
		views = append(views, v)
	}
	s.mu.Unlock()
	sort.Slice(views, func(i, j int) bool { return views[i].Name < views[j].Name })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	statusPage.Execute(w, struct {
		Now      string
		Accounts []accountView
	}{now.Format(stamp), views})
}
