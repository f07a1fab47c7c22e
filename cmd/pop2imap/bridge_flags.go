package main

import (
	"time"

	"github.com/pop2imap/pop2imap/internal/daemon"
)

// durationFlag is a pflag.Value for durations that also takes days: "7d".
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return "0" // pflag shows no default for "0"
	}
	return daemon.FormatDuration(*f.d)
}

func (f durationFlag) Set(s string) error {
	d, err := daemon.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

func (f durationFlag) Type() string { return "duration" }
