package faultloop

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/faultproxy"
)

// loopEnv is the environment variable that turns the fault loop on:
// "cuts:N,kills:N" (N scenarios that each cut the POP3 and then the IMAP
// connection, so 2N cuts; N kills), optionally with ",msgs:M" (generated messages per
// scenario, default 150) and ",seed:S" (default 1).
const loopEnv = "POP2IMAP_FAULTLOOP"

type loopConfig struct {
	cuts, kills, msgs int
	seed              uint64
}

func parseLoopConfig(s string) (loopConfig, error) {
	c := loopConfig{msgs: 150, seed: 1}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), ":")
		n, err := strconv.ParseUint(v, 10, 64)
		if !ok || err != nil {
			return c, fmt.Errorf("%s=%q: want cuts:N,kills:N[,msgs:M][,seed:S]", loopEnv, s)
		}
		switch k {
		case "cuts":
			c.cuts = int(n)
		case "kills":
			c.kills = int(n)
		case "msgs":
			c.msgs = int(n)
		case "seed":
			c.seed = n
		default:
			return c, fmt.Errorf("%s: unknown key %q", loopEnv, k)
		}
	}
	return c, nil
}

// TestFaultLoop proves the first promise of the README under fire: a run
// that is cut off at a random byte of its POP3 or IMAP connection, or
// killed with SIGKILL at a random moment, and then rerun until it
// completes, loses nothing, copies nothing twice and changes no byte. After
// every run it checks the folder, the maildrop and the journal; at the end
// of every scenario the folder holds each message once and the maildrop
// holds nothing (the corpus has nothing Dovecot refuses: it serves an
// empty Maildir file as CRLF, which it then accepts).
func TestFaultLoop(t *testing.T) {
	spec := os.Getenv(loopEnv)
	if spec == "" {
		t.Skipf("%s is not set (e.g. %s=cuts:10,kills:10)", loopEnv, loopEnv)
	}
	cfg, err := parseLoopConfig(spec)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w := newWorld(t, corpusFor(t, cfg.seed, cfg.msgs))
	rng := rand.New(rand.NewPCG(cfg.seed, 77))
	t.Logf("corpus: %d messages, %d bytes as served; seed %d", len(w.served), servedBytes(w), cfg.seed)

	// Calibrate: one clean scenario gives the run time and the bytes each
	// way, from which the kill moments and the cut offsets are drawn.
	cal := w.newPair(t)
	res := cal.run(t, 0)
	wantCode := exitOK
	if len(w.refused) > 0 {
		wantCode = exitLeftBehind
	}
	if c, problems := cal.check(t, cal.snapshot(t), true); !c.zero() || len(problems) > 0 {
		t.Errorf("clean run: %v\n%s", c, strings.Join(problems, "\n"))
	}
	if res.code != wantCode {
		t.Fatalf("clean run: exit %d, want %d\n%s", res.code, wantCode, tail(res.output, 20))
	}
	if left := leftInReport(t, cal.report()); len(left) != len(w.refused) {
		t.Errorf("clean run: the report lists %v as left behind, want the %d refused", left, len(w.refused))
	}
	runTime := res.elapsed
	total := map[string]int64{
		"pop3 " + faultproxy.Downstream.String(): cal.popProxy.Bytes(faultproxy.Downstream),
		"pop3 " + faultproxy.Upstream.String():   cal.popProxy.Bytes(faultproxy.Upstream),
		"imap " + faultproxy.Downstream.String(): cal.imapProxy.Bytes(faultproxy.Downstream),
		"imap " + faultproxy.Upstream.String():   cal.imapProxy.Bytes(faultproxy.Upstream),
	}
	t.Logf("clean run: %v; bytes %v", runTime.Round(time.Millisecond), total)

	// A lost, duplicated or altered message stays so until the scenario
	// ends, so each scenario counts the most any of its checks saw, and the
	// totals add up the scenarios.
	var sum, cur tally
	var failures []string
	endScenario := func() {
		sum.add(cur)
		cur = tally{}
	}
	record := func(scenario string, c tally, problems []string) {
		cur.maxWith(c)
		if len(problems) > 0 {
			msg := fmt.Sprintf("%s: %v", scenario, c)
			for i, p := range problems {
				if i == 10 {
					msg += fmt.Sprintf("\n    ... and %d more", len(problems)-10)
					break
				}
				msg += "\n    " + p
			}
			failures = append(failures, msg)
			t.Error(msg)
		}
	}
	// finish reruns without faults until the migration completes, and
	// checks the end state.
	finish := func(name string, p *pair) int {
		p.popProxy.SetFaults()
		p.imapProxy.SetFaults()
		for i := 1; i <= 5; i++ {
			res := p.run(t, 0)
			if res.code == exitLeftBehind || res.code == exitOK {
				c, problems := p.check(t, p.snapshot(t), true)
				if res.code != wantCode {
					problems = append(problems, fmt.Sprintf("completing run exited %d, want %d", res.code, wantCode))
				}
				record(name+" (end)", c, problems)
				return i
			}
			c, problems := p.check(t, p.snapshot(t), false)
			record(fmt.Sprintf("%s (clean rerun %d, exit %d)", name, i, res.code), c, problems)
			t.Logf("%s: clean rerun %d exited %d: %s", name, i, res.code, lastLine(res.output))
		}
		record(name, tally{}, []string{"did not complete within 5 clean reruns"})
		return 5
	}
	dirs := []faultproxy.Direction{faultproxy.Downstream, faultproxy.Upstream}
	vary := func(p *pair) {
		p.imapConns = []int{1, 2, 4}[rng.IntN(3)]
		p.pop3Window = []int{1, 4, 16}[rng.IntN(3)]
	}

	// Cuts: each scenario arms one POP3 cut and one IMAP cut, each at a
	// random byte of a random direction, counted over all the run's
	// connections. The binary retries in-process; whatever is left is
	// finished by clean reruns.
	popCuts, imapCuts, cutScenarios, reruns := 0, 0, 0, 0
	for s := 1; (popCuts < cfg.cuts || imapCuts < cfg.cuts) && s <= 3*cfg.cuts+3; s++ {
		p := w.newPair(t)
		vary(p)
		name := fmt.Sprintf("cut scenario %d", s)
		var armed []string
		if popCuts < cfg.cuts {
			d := dirs[rng.IntN(2)]
			off := rng.Int64N(total["pop3 "+d.String()])
			p.popProxy.SetFaults(faultproxy.Fault{Global: true, Dir: d, Offset: off, Action: faultproxy.Cut})
			armed = append(armed, fmt.Sprintf("pop3 %s at %d", d, off))
		}
		if imapCuts < cfg.cuts {
			d := dirs[rng.IntN(2)]
			off := rng.Int64N(total["imap "+d.String()])
			p.imapProxy.SetFaults(faultproxy.Fault{Global: true, Dir: d, Offset: off, Action: faultproxy.Cut})
			armed = append(armed, fmt.Sprintf("imap %s at %d", d, off))
		}
		name += " [" + strings.Join(armed, "; ") + fmt.Sprintf("; conns %d, window %d]", p.imapConns, p.pop3Window)
		res := p.run(t, 0)
		popCuts += len(p.popProxy.Fired())
		imapCuts += len(p.imapProxy.Fired())
		c, problems := p.check(t, p.snapshot(t), false)
		record(fmt.Sprintf("%s (faulty run, exit %d)", name, res.code), c, problems)
		reruns += finish(name, p)
		endScenario()
		cutScenarios++
		if cutScenarios%10 == 0 {
			t.Logf("progress: %d cut scenarios, %d POP3 and %d IMAP cuts; %v; %v", cutScenarios, popCuts, imapCuts, sum, time.Since(start).Round(time.Second))
		}
	}

	// Kills: each scenario kills the binary at a random moment of a run, up
	// to three times, then finishes with clean reruns.
	kills, missed, killScenarios := 0, 0, 0
	for s := 1; kills < cfg.kills && s <= 3*cfg.kills+3; s++ {
		p := w.newPair(t)
		vary(p)
		name := fmt.Sprintf("kill scenario %d [conns %d, window %d]", s, p.imapConns, p.pop3Window)
		left := len(w.served)
		for k := 0; k < 3 && kills < cfg.kills; k++ {
			// Draw the moment from the time the rest of the work takes.
			span := time.Duration(int64(runTime)*int64(left)/int64(len(w.served))) + 200*time.Millisecond
			at := time.Duration(rng.Int64N(int64(span))) + time.Millisecond
			res := p.run(t, at)
			if !res.killed {
				missed++
				break
			}
			kills++
			snap := p.snapshot(t)
			left = len(snap.maildrop)
			c, problems := p.check(t, snap, false)
			record(fmt.Sprintf("%s (killed at %v)", name, at.Round(time.Millisecond)), c, problems)
		}
		reruns += finish(name, p)
		endScenario()
		killScenarios++
		if killScenarios%10 == 0 {
			t.Logf("progress: %d kill scenarios, %d kills; %v; %v", killScenarios, kills, sum, time.Since(start).Round(time.Second))
		}
	}

	t.Logf("fault loop: %d POP3 cuts and %d IMAP cuts in %d scenarios; %d kills (%d more runs ended before their kill) in %d scenarios; %d completing reruns; %v",
		popCuts, imapCuts, cutScenarios, kills, missed, killScenarios, reruns, time.Since(start).Round(time.Second))
	t.Logf("fault loop totals: lost %d, duplicated %d, altered %d (deleted unconfirmed %d, recorded deleted but kept %d)",
		sum.lost, sum.duplicated, sum.altered, sum.unconfirmed, sum.keptDeleted)
	fmt.Printf("faultloop: cuts %d (pop3 %d, imap %d), kills %d: lost %d, duplicated %d, altered %d; %d scenarios failed; %v\n",
		popCuts+imapCuts, popCuts, imapCuts, kills, sum.lost, sum.duplicated, sum.altered, len(failures), time.Since(start).Round(time.Second))
	if popCuts < cfg.cuts || imapCuts < cfg.cuts {
		t.Errorf("only %d POP3 and %d IMAP cuts fired, want %d each", popCuts, imapCuts, cfg.cuts)
	}
	if kills < cfg.kills {
		t.Errorf("only %d kills landed, want %d", kills, cfg.kills)
	}
}

func servedBytes(w *world) int64 {
	var n int64
	for _, m := range w.served {
		n += int64(len(m.data))
	}
	return n
}

func lastLine(s string) string {
	return tail(s, 1)
}
