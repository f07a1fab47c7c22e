package bench

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/bench/corpus"
	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/delayproxy"
	"github.com/pop2imap/pop2imap/internal/dovecottest"
	"github.com/pop2imap/pop2imap/state"
)

// TestProfile runs the pipeline in-process (package bridge, as the command
// does) against Dovecot, so that it can be profiled: it writes cpu.pprof,
// block.pprof, mutex.pprof and trace.out to $BENCH_WORK. Look at the
// off-CPU waits with
//
//	go tool trace -pprof=syscall trace.out > syscall.pprof   (fsync)
//	go tool trace -pprof=net trace.out > net.pprof           (round trips)
//	go tool trace -pprof=sync trace.out > sync.pprof         (locks, channels)
//
// Gated by POP2IMAP_BENCH_PROFILE=1; BENCH_N (one size) and BENCH_RTT (one
// RTT in ms) choose the run, BENCH_FLAGS is ignored; BENCH_CONNS and
// BENCH_WINDOW set IMAPConns and Window.
func TestProfile(t *testing.T) {
	if os.Getenv("POP2IMAP_BENCH_PROFILE") != "1" {
		t.Skip("set POP2IMAP_BENCH_PROFILE=1 to profile the pipeline")
	}
	n := ints(t, "BENCH_N", "2000")[0]
	rtt := time.Duration(ints(t, "BENCH_RTT", "0")[0]) * time.Millisecond
	conns := ints(t, "BENCH_CONNS", "0")[0]
	window := ints(t, "BENCH_WINDOW", "0")[0]
	work := os.Getenv("BENCH_WORK")
	if work == "" {
		work = t.TempDir()
	}
	d := dovecottest.Start(t)
	b := &bench{t: t, cfg: benchConfig{seed: 1}, d: d}
	b.uid, b.gid = mailUser(t)
	b.out, _ = os.Create(filepath.Join(work, "profile.txt"))
	src := b.newSource("src")
	specs := make([]corpus.Spec, n)
	for i := range specs {
		specs[i] = corpus.SpecFor(1, i)
	}
	total := b.seedMaildir(src, specs)
	b.drain(d.POP3Addr, src) // build Dovecot's index outside the profile
	dst := b.newUser("dst")

	pop3Addr, imapAddr := d.POP3Addr, d.IMAPAddr
	if rtt > 0 {
		pp, _ := delayproxy.Listen(pop3Addr, rtt/2)
		defer pp.Close()
		ip, _ := delayproxy.Listen(imapAddr, rtt/2)
		defer ip.Close()
		pop3Addr, imapAddr = pp.Addr(), ip.Addr()
	}
	j, err := state.Open(filepath.Join(work, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	secret := func(context.Context) (string, error) { return password, nil }
	m := &bridge.Migrator{
		Config:  bridge.Config{IMAPConns: conns, Window: window},
		POP3:    &bridge.Endpoint{Addr: pop3Addr, Username: src, TLS: bridge.TLSNone, Secret: secret},
		IMAP:    &bridge.Endpoint{Addr: imapAddr, Username: dst, TLS: bridge.TLSNone, Secret: secret},
		Journal: j,
		Stats:   &bridge.Stats{},
	}
	runtime.SetBlockProfileRate(10000) // one sample per 10 µs blocked
	runtime.SetMutexProfileFraction(1)
	cpu, _ := os.Create(filepath.Join(work, "cpu.pprof"))
	tr, _ := os.Create(filepath.Join(work, "trace.out"))
	pprof.StartCPUProfile(cpu)
	trace.Start(tr)
	start := time.Now()
	err = m.Run(context.Background())
	wall := time.Since(start)
	trace.Stop()
	pprof.StopCPUProfile()
	cpu.Close()
	tr.Close()
	for _, name := range []string{"block", "mutex"} {
		f, _ := os.Create(filepath.Join(work, name+".pprof"))
		pprof.Lookup(name).WriteTo(f, 0)
		f.Close()
	}
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	b.printf("profile: N=%d (%.1f MB) RTT %v conns %d window %d: %.2fs, %.0f msgs/s, appended %d",
		n, float64(total)/1e6, rtt, conns, window, wall.Seconds(), float64(n)/wall.Seconds(), m.Stats.Appended.Load())
}
