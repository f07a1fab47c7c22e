package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
)

// timings is where a run's time went, from its Stats: what --stats prints
// and -v logs, so that a user can tell why a run was slow.
type timings struct {
	setup, listing, pipeline, retr, handoff time.Duration
	appendMean, journalMean, rtt            time.Duration
	appends                                 int64
	inFlight                                float64
	maxWindow                               int64
}

func timingsOf(s *bridge.Stats) timings {
	t := timings{
		setup:     time.Duration(s.SetupNanos.Load()),
		listing:   time.Duration(s.ListNanos.Load()),
		pipeline:  time.Duration(s.PipelineNanos.Load()),
		retr:      time.Duration(s.RetrNanos.Load()),
		handoff:   time.Duration(s.HandoffNanos.Load()),
		rtt:       time.Duration(s.RTTNanos.Load()),
		appends:   s.AppendCount.Load(),
		inFlight:  s.InFlight(),
		maxWindow: s.MaxWindow.Load(),
	}
	if t.appends > 0 {
		t.appendMean = time.Duration(s.AppendNanos.Load() / t.appends)
		t.journalMean = time.Duration(s.JournalNanos.Load() / t.appends)
	}
	return t
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
func secs(d time.Duration) string {
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// line renders the timings on one line:
//
//	Stats: set-up 0.31 s (listing 0.05 s), copying 1.72 s (RETR 0.60 s, waiting for the IMAP side 1.02 s), APPEND 52.3 ms a message, journal 1.2 ms a message, 28.4 in flight on average (window up to 40), RTT 50.4 ms
func (t timings) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Stats: set-up %s (listing %s)", secs(t.setup), secs(t.listing))
	if t.pipeline > 0 {
		fmt.Fprintf(&b, ", copying %s (RETR %s, waiting for the IMAP side %s)", secs(t.pipeline), secs(t.retr), secs(t.handoff))
	}
	if t.appends > 0 {
		fmt.Fprintf(&b, ", APPEND %s a message, journal %s a message, %.1f in flight on average (window up to %d)",
			ms(t.appendMean), ms(t.journalMean), t.inFlight, t.maxWindow)
	}
	if t.rtt > 0 {
		fmt.Fprintf(&b, ", RTT %s", ms(t.rtt))
	}
	return b.String()
}

// printStats writes the --stats line.
func printStats(w io.Writer, s *bridge.Stats) {
	fmt.Fprintln(w, timingsOf(s).line())
}

// logStats logs the same figures for -v.
func logStats(logger *slog.Logger, s *bridge.Stats) {
	t := timingsOf(s)
	logger.Info("timings", "setup", t.setup, "listing", t.listing, "copying", t.pipeline, "retr", t.retr,
		"waiting_for_imap", t.handoff, "appends", t.appends, "append_mean", t.appendMean, "journal_mean", t.journalMean,
		"in_flight", fmt.Sprintf("%.1f", t.inFlight), "max_window", t.maxWindow, "rtt", t.rtt)
}
