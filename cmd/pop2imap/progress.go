package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/pop2imap/pop2imap/bridge"
)

// progress draws what the pipeline counts: a bar on a terminal, or a log line
// every few seconds elsewhere. The pipeline never draws anything itself.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
}

const progressLogEvery = 5 * time.Second

func startProgress(mode string, stats *bridge.Stats, w io.Writer, logger *slog.Logger) *progress {
	p := &progress{done: make(chan struct{})}
	useBar := mode == "always" || (mode == "auto" && isTerminal(w))
	if mode == "never" && !useBar {
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if useBar {
			p.bar(stats, w)
		} else {
			p.logLines(stats, logger)
		}
	}()
	return p
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func copiedCount(s *bridge.Stats) int64 {
	return s.Appended.Load() + s.Recovered.Load() + s.Adopted.Load() + s.LeftBehind.Load()
}

func (p *progress) bar(stats *bridge.Stats, w io.Writer) {
	var bar *progressbar.ProgressBar
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	update := func() {
		total := stats.BytesToCopy.Load()
		if total == 0 {
			return
		}
		if bar == nil {
			bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(w),
				progressbar.OptionShowBytes(true),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionClearOnFinish(),
			)
		}
		if n, of := stats.Indexed.Load(), stats.IndexTotal.Load(); of > 0 && n < of && copiedCount(stats) == 0 {
			bar.Describe(fmt.Sprintf("indexing the folder %d/%d", n, of))
		} else {
			bar.Describe(fmt.Sprintf("%d/%d msgs", copiedCount(stats), stats.ToCopy.Load()))
		}
		bar.Set64(min(stats.Bytes.Load(), total))
	}
	for {
		select {
		case <-tick.C:
			update()
		case <-p.done:
			update()
			if bar != nil {
				bar.Finish()
			}
			return
		}
	}
}

func (p *progress) logLines(stats *bridge.Stats, logger *slog.Logger) {
	tick := time.NewTicker(progressLogEvery)
	defer tick.Stop()
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
			logger.Info("progress", "copied", copiedCount(stats), "of", stats.ToCopy.Load(),
				"bytes", stats.Bytes.Load(), "of_bytes", stats.BytesToCopy.Load())
		case <-p.done:
			return
		}
	}
}

// printSummary prints the end-of-run table. The five main rows always show;
// the rest only when they are not zero.
func printSummary(w io.Writer, s *bridge.Stats, elapsed time.Duration, dryRun bool) {
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
	}
	row("Appended", s.Appended.Load(), true)
	row("Recovered", s.Recovered.Load(), false)
	row("Adopted", s.Adopted.Load(), false)
	row("Deleted", s.Deleted.Load(), true)
	row("Left behind", s.LeftBehind.Load(), true)
	row("Retries", s.Retries.Load(), false)
	fmt.Fprintf(w, "  %-14s %s\n", "Bytes:", humanBytes(s.Bytes.Load()))
	rate := 0.0
	if secs := elapsed.Seconds(); secs > 0 {
		rate = float64(s.Appended.Load()+s.Recovered.Load()) / secs
	}
	fmt.Fprintf(w, "  %-14s %s (%.1f msgs/s)\n", "Elapsed:", elapsed.Round(time.Millisecond), rate)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
