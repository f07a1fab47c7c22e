package main

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/fleet"
)

var errNotPositive = errors.New("must be a positive number")

// fleetOptions are the limits of commands that run many accounts: bridge
// and batch share them, and fleet enforces them.
type fleetOptions struct {
	Jobs            int
	MaxConnsPerHost int
}

func (o *fleetOptions) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.Jobs, "jobs", fleet.DefaultJobs, "run at most `N` accounts at once")
	fs.IntVar(&o.MaxConnsPerHost, "max-conns-per-host", fleet.DefaultMaxConnsPerHost,
		"open at most `N` connections to one server host, POP3 and IMAP together, retries included")
}

// check refuses limits that cannot work, naming the flag.
func (o *fleetOptions) check() error {
	if o.Jobs < 1 {
		return &settingError{setting: "--jobs", err: errNotPositive, hint: "give at least 1"}
	}
	if o.MaxConnsPerHost < 1 {
		return &settingError{setting: "--max-conns-per-host", err: errNotPositive, hint: "give at least 3 (a POP3 and an IMAP connection, and one left for a folder index, when both are on one host)"}
	}
	return nil
}

// runner returns the runner for these limits, once each account's need
// fits under the cap.
func (o *fleetOptions) runner(needs []fleet.Need) (*fleet.Runner, error) {
	r := fleet.New(o.Jobs, o.MaxConnsPerHost)
	for _, n := range needs {
		if err := r.Check(n); err != nil {
			return nil, &settingError{setting: "--max-conns-per-host", err: err}
		}
	}
	return r, nil
}

// appenders is how many appending connections an account asks for.
func appenders(cfg bridge.Config) int {
	if cfg.IMAPConns > 0 {
		return min(cfg.IMAPConns, bridge.MaxIMAPConns)
	}
	return bridge.DefaultIMAPConns
}
