package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
)

// report collects what --report writes: the run's counts and every message
// left behind, with the reason. It holds no secret: only host names, user
// names and message metadata.
type report struct {
	mu sync.Mutex
	reportHead
	DryRun    bool          `json:"dry_run"`
	Delete    bool          `json:"delete"`
	Listed    int64         `json:"listed"`
	Done      int64         `json:"already_done"`
	Appended  int64         `json:"appended"`
	Recovered int64         `json:"recovered"`
	Adopted   int64         `json:"adopted"`
	Deleted   int64         `json:"deleted"`
	Left      int64         `json:"left_behind"`
	Bytes     int64         `json:"bytes"`
	Retries   int64         `json:"retries"`
	LeftList  []leftMessage `json:"left_behind_messages"`
	Error     string        `json:"error,omitempty"`
	ExitCode  int           `json:"exit_code"`
}

type leftMessage struct {
	Number    int    `json:"number"`
	UIDL      string `json:"uidl"`
	Size      int64  `json:"size"`
	MessageID string `json:"message_id,omitempty"`
	Reason    string `json:"reason"`
}

func newReport(o *migrateOptions, journal string) *report {
	return &report{reportHead: newReportHead(&o.connOptions, journal),
		DryRun: o.DryRun, Delete: o.Delete, LeftList: []leftMessage{}}
}

// reportHead begins every report, migrate's and verify's: which build ran,
// when, and on which pair of accounts and folder. It holds no secret.
type reportHead struct {
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Seconds  float64   `json:"elapsed_seconds"`
	POP3     string    `json:"pop3"`
	POP3User string    `json:"pop3_user"`
	IMAP     string    `json:"imap"`
	IMAPUser string    `json:"imap_user"`
	Folder   string    `json:"folder"`
	Journal  string    `json:"journal"`
}

func newReportHead(o *connOptions, journal string) reportHead {
	return reportHead{Version: version(), Started: time.Now().UTC(),
		POP3: o.POP3, POP3User: o.POP3User, IMAP: o.IMAP, IMAPUser: o.IMAPUser,
		Folder: o.Folder, Journal: journal}
}

func (r *report) add(e bridge.Event) {
	if e.Kind != bridge.EventRefused {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.LeftList = append(r.LeftList, leftMessage{Number: e.Number, UIDL: e.UIDL, Size: e.Size,
		MessageID: e.MessageID, Reason: e.Err.Error()})
}

// write stores the report atomically: a reader never sees half a file.
func (r *report) write(path string, s *bridge.Stats, elapsed time.Duration, runErr error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Finished = time.Now().UTC()
	r.Seconds = elapsed.Seconds()
	r.Listed, r.Done, r.Appended = s.Listed.Load(), s.AlreadyDone.Load(), s.Appended.Load()
	r.Recovered, r.Deleted, r.Left = s.Recovered.Load(), s.Deleted.Load(), s.LeftBehind.Load()
	r.Adopted = s.Adopted.Load()
	r.Bytes, r.Retries = s.Bytes.Load(), s.Retries.Load()
	r.ExitCode = exitCode(runErr)
	if runErr != nil {
		r.Error = runErr.Error()
	}
	return writeReport(path, r)
}

// writeReport stores v as indented JSON at path atomically (writeAtomic).
func writeReport(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// writeAtomic stores what write writes at path atomically, the way
// restic's local backend saves a file: a temporary file beside it, written
// and fsync'd, then renamed over it. A reader never sees half a report.
func writeAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pop2imap-report-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
