package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
)

// verifyCounts is what verify's progress shows: messages and bytes checked.
type verifyCounts struct {
	messages, bytes atomic.Int64
}

func (c *verifyCounts) add(r bridge.VerifyResult) {
	c.messages.Add(1)
	c.bytes.Add(r.Size)
}

// verifyReport is what verify --report writes: the counts and every message
// that is not identical, with what was found. It holds no secret.
type verifyReport struct {
	mu sync.Mutex
	reportHead
	Quick      bool          `json:"quick"`
	Checked    int           `json:"checked"`
	Same       int           `json:"identical"`
	Normalised int           `json:"identical_normalised"`
	Missing    int           `json:"missing"`
	Differ     int           `json:"different"`
	Errors     int           `json:"errors"`
	Duplicates int           `json:"duplicates"` // extra copies, marked +
	NoFolder   bool          `json:"folder_missing"`
	Mismatches []verifyEntry `json:"not_identical"`
	Error      string        `json:"error,omitempty"`
	ExitCode   int           `json:"exit_code"`
}

type verifyEntry struct {
	Mark      string `json:"mark"`
	Number    int    `json:"number"`
	UIDL      string `json:"uidl"`
	Size      int64  `json:"size"`
	MessageID string `json:"message_id,omitempty"`
	UID       uint32 `json:"uid,omitempty"`
	Detail    string `json:"detail"`
}

func newVerifyReport(o *verifyOptions, journal string) *verifyReport {
	return &verifyReport{reportHead: newReportHead(&o.connOptions, journal),
		Quick: o.Quick, Mismatches: []verifyEntry{}}
}

func (r *verifyReport) add(v bridge.VerifyResult) {
	if v.Mark == bridge.VerifySame {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Mismatches = append(r.Mismatches, verifyEntry{Mark: string(rune(v.Mark)), Number: v.Number, UIDL: v.UIDL,
		Size: v.Size, MessageID: v.MessageID, UID: v.UID, Detail: verifyLine(v)})
}

// write stores the report atomically, as migrate's is.
func (r *verifyReport) write(path string, s *bridge.VerifyStats, elapsed time.Duration, runErr error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Finished = time.Now().UTC()
	r.Seconds = elapsed.Seconds()
	if s != nil {
		r.Checked, r.Same, r.Normalised = s.Checked, s.Same, s.Normalised
		r.Missing, r.Differ, r.Errors, r.NoFolder = s.Missing, s.Differ, s.Errors, s.FolderMissing
		r.Duplicates = s.Duplicates
	}
	r.ExitCode = exitCode(runErr)
	if runErr != nil {
		r.Error = runErr.Error()
	}
	return writeReport(path, r)
}
