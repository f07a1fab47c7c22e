package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/humanize"
)

// progress is a display of how far a run has got, drawn by one goroutine
// until stop: a bar on a terminal, or a log line every few seconds
// elsewhere. migrate, verify and batch each have their own (startProgress,
// startVerifyProgress, startBatchProgress); the pipeline never draws
// anything itself.
type progress struct {
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// startDisplay runs show in a goroutine until stop closes done; with show
// nil there is nothing to draw.
func startDisplay(show func(done <-chan struct{})) *progress {
	p := &progress{done: make(chan struct{})}
	if show != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			show(p.done)
		}()
	}
	return p
}

// wantBar reports whether --progress mode draws a bar on w: always, or
// auto on a terminal.
func wantBar(mode string, w io.Writer) bool {
	return mode == "always" || (mode == "auto" && isTerminal(w))
}

const progressLogEvery = 5 * time.Second

func startProgress(mode string, stats *bridge.Stats, w io.Writer, logger *slog.Logger) *progress {
	switch {
	case wantBar(mode, w):
		return startDisplay(func(done <-chan struct{}) { migrateBar(done, stats, w) })
	case mode == "never":
		return startDisplay(nil)
	}
	return startDisplay(func(done <-chan struct{}) { migrateLogLines(done, stats, logger) })
}

func (p *progress) stop() {
	p.once.Do(func() { close(p.done) })
	p.wg.Wait()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func copiedCount(s *bridge.Stats) int64 {
	return s.Appended.Load() + s.Recovered.Load() + s.Adopted.Load() + s.LeftBehind.Load()
}

// progressText is the text beside the bar, whose length is the bytes: the
// messages as a count, and the time left at the byte rate so far.
func progressText(msgs, msgsTotal, bytes, bytesTotal int64, elapsed time.Duration) string {
	s := fmt.Sprintf("%d of %d messages", msgs, msgsTotal)
	if eta, ok := estimateLeft(bytes, bytesTotal, elapsed); ok {
		s += ", about " + eta.String() + " left"
	}
	return s
}

// estimateLeft extrapolates the byte rate so far; it gives nothing until a
// second has passed and some bytes have moved.
func estimateLeft(bytes, bytesTotal int64, elapsed time.Duration) (time.Duration, bool) {
	if bytes <= 0 || bytesTotal <= 0 || elapsed < time.Second {
		return 0, false
	}
	left := time.Duration(float64(elapsed) * float64(max(bytesTotal-bytes, 0)) / float64(bytes))
	return left.Round(time.Second), true
}

func migrateBar(done <-chan struct{}, stats *bridge.Stats, w io.Writer) {
	var bar *progressbar.ProgressBar
	var started time.Time
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	update := func() {
		total := stats.BytesToCopy.Load()
		if total == 0 {
			return
		}
		if bar == nil {
			started = time.Now()
			bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(w),
				progressbar.OptionShowBytes(true),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)
		}
		copied := min(stats.Bytes.Load(), total)
		if n, of := stats.Indexed.Load(), stats.IndexTotal.Load(); of > 0 && n < of && copiedCount(stats) == 0 {
			bar.Describe(fmt.Sprintf("indexing the folder %d/%d", n, of))
		} else {
			bar.Describe(progressText(copiedCount(stats), stats.ToCopy.Load(), copied, total, time.Since(started)))
		}
		bar.Set64(copied)
	}
	for {
		select {
		case <-tick.C:
			update()
		case <-done:
			update()
			if bar != nil {
				bar.Finish()
			}
			return
		}
	}
}

func migrateLogLines(done <-chan struct{}, stats *bridge.Stats, logger *slog.Logger) {
	tick := time.NewTicker(progressLogEvery)
	defer tick.Stop()
	started := time.Now()
	for {
		select {
		case <-tick.C:
			if n, of := stats.Indexed.Load(), stats.IndexTotal.Load(); of > 0 && n < of && copiedCount(stats) == 0 {
				logger.Info("indexing the folder", "read", n, "of", of)
				continue
			}
			if stats.ToCopy.Load() == 0 {
				continue
			}
			bytes, total := stats.Bytes.Load(), stats.BytesToCopy.Load()
			attrs := []any{"copied", copiedCount(stats), "of", stats.ToCopy.Load(), "bytes", bytes, "of_bytes", total}
			if eta, ok := estimateLeft(bytes, total, time.Since(started)); ok {
				attrs = append(attrs, "eta", eta)
			}
			logger.Info("progress", attrs...)
		case <-done:
			return
		}
	}
}

// startVerifyProgress shows how far verify has got: the messages and bytes
// checked, as a spinner on a terminal (the total is not known in advance),
// or a log line every few seconds elsewhere.
func startVerifyProgress(mode string, counts *verifyCounts, w io.Writer, logger *slog.Logger) *progress {
	useBar := wantBar(mode, w)
	if mode == "never" && !useBar {
		return startDisplay(nil)
	}
	return startDisplay(func(done <-chan struct{}) {
		every := progressLogEvery
		var bar *progressbar.ProgressBar
		if useBar {
			every = 200 * time.Millisecond
			bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(w), progressbar.OptionShowBytes(true),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				n, b := counts.messages.Load(), counts.bytes.Load()
				if bar != nil {
					bar.Describe(fmt.Sprintf("verified %d messages", n))
					bar.Set64(b)
				} else {
					logger.Info("progress", "verified", n, "bytes", b)
				}
			case <-done:
				if bar != nil {
					bar.Finish()
				}
				return
			}
		}
	})
}

// printSummary prints the end-of-run table. The five main rows always show;
// the rest only when they are not zero.
// In a dry run it shows what would be copied and deleted, with their bytes.
func printSummary(w io.Writer, s *bridge.Stats, elapsed time.Duration, dryRun bool, plan *dryRunPlan) {
	title := "Summary"
	if dryRun {
		title = "Summary (dry run: nothing was changed)"
	}
	fmt.Fprintln(w, title)
	row := func(name string, v int64, always bool) {
		if always || v != 0 {
			fmt.Fprintf(w, "  %-14s %d\n", name+":", v)
		}
	}
	row("Listed", s.Listed.Load(), true)
	row("Already done", s.AlreadyDone.Load(), true)
	if dryRun {
		row("Would copy", s.ToCopy.Load(), true)
		if plan != nil && plan.deletes.Load() > 0 {
			fmt.Fprintf(w, "  %-14s %d (%s)\n", "Would delete:", plan.deletes.Load(), humanize.Bytes(plan.deleteBytes.Load()))
		}
	}
	row("Appended", s.Appended.Load(), true)
	row("Recovered", s.Recovered.Load(), false)
	row("Adopted", s.Adopted.Load(), false)
	row("Deleted", s.Deleted.Load(), true)
	row("Left behind", s.LeftBehind.Load(), true)
	row("Retries", s.Retries.Load(), false)
	if dryRun {
		fmt.Fprintf(w, "  %-14s %s\n", "Bytes to copy:", humanize.Bytes(s.BytesToCopy.Load()))
	} else {
		fmt.Fprintf(w, "  %-14s %s\n", "Bytes:", humanize.Bytes(s.Bytes.Load()))
	}
	rate := 0.0
	if secs := elapsed.Seconds(); secs > 0 {
		rate = float64(s.Appended.Load()+s.Recovered.Load()) / secs
	}
	fmt.Fprintf(w, "  %-14s %s (%.1f msgs/s)\n", "Elapsed:", elapsed.Round(time.Millisecond), rate)
}

// dryRunPlan counts the deletions a dry run announces.
type dryRunPlan struct {
	deletes, deleteBytes atomic.Int64
}
