package main

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/pop2imap/pop2imap/internal/batch"
)

// startBatchProgress draws one display for the whole batch: a bar on a
// terminal, or a log line every five seconds elsewhere (JSON with
// --log-format json).
func startBatchProgress(mode string, p *batch.Progress, w io.Writer, logger *slog.Logger) *progress {
	if wantBar(mode, w) {
		return startDisplay(func(done <-chan struct{}) { batchBar(done, p, w) })
	}
	return startDisplay(func(done <-chan struct{}) { batchLogLines(done, p, logger) })
}

// batchLine is the text of the display: accounts, messages, rate and the
// time left.
func batchLine(s batch.Snapshot) string {
	line := fmt.Sprintf("accounts %d/%d done, %d running, %d failed; messages %d/%d",
		s.Done+s.LeftBehind, s.Accounts, s.Running, s.Failed, s.Messages, s.MessagesTotal)
	if secs := s.Elapsed.Seconds(); secs >= 1 {
		line += fmt.Sprintf(", %.0f msgs/s", float64(s.Copied)/secs)
	}
	if s.Left > 0 {
		line += ", about " + s.Left.String() + " left"
	}
	return line
}

func batchBar(done <-chan struct{}, p *batch.Progress, w io.Writer) {
	bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(w), progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	sized := false
	for {
		select {
		case <-tick.C:
			s := p.Snapshot()
			if !sized && s.MessagesTotal > 0 {
				bar.ChangeMax64(s.MessagesTotal)
				sized = true
			}
			bar.Describe(batchLine(s))
			bar.Set64(s.Messages)
		case <-done:
			bar.Finish()
			return
		}
	}
}

func batchLogLines(done <-chan struct{}, p *batch.Progress, logger *slog.Logger) {
	tick := time.NewTicker(progressLogEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s := p.Snapshot()
			attrs := []any{"accounts", s.Accounts, "done", s.Done, "left_behind", s.LeftBehind, "failed", s.Failed,
				"running", s.Running, "messages", s.Messages, "of", s.MessagesTotal, "bytes", s.Bytes, "of_bytes", s.BytesTotal}
			if secs := s.Elapsed.Seconds(); secs >= 1 {
				attrs = append(attrs, "msgs_per_s", int64(float64(s.Copied)/secs))
			}
			if s.Left > 0 {
				attrs = append(attrs, "eta", s.Left)
			}
			logger.Info("batch progress", attrs...)
		case <-done:
			return
		}
	}
}
