package daemon

import (
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Prometheus series of the bridge, one set per account.
// They live in a registry of their own, so that tests and several services
// in one process never collide in the global one.
type metrics struct {
	reg *prometheus.Registry

	forwarded, bytes, deleted, leftBehind, baselined *prometheus.CounterVec
	cycles, errors                                   *prometheus.CounterVec
	lastSuccess, backoff, failures, nextRun          *prometheus.GaugeVec
}

func newMetrics() *metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "pop2imap", Subsystem: "bridge", Name: name, Help: help}, labels)
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "pop2imap", Subsystem: "bridge", Name: name, Help: help}, []string{"account"})
	}
	m := &metrics{
		reg:         prometheus.NewRegistry(),
		forwarded:   counter("messages_forwarded_total", "Messages stored in the IMAP folder (appended, or found there after an interrupted run).", "account"),
		bytes:       counter("bytes_forwarded_total", "Bytes of the messages appended to the IMAP folder.", "account"),
		deleted:     counter("messages_deleted_total", "Messages deleted from the POP3 server after their copy was confirmed.", "account"),
		leftBehind:  counter("messages_left_behind_total", "APPENDs the IMAP server refused; the message stays on the POP3 server and is tried again at the next cycle.", "account"),
		baselined:   counter("messages_baselined_total", "Messages recorded as done without copying (--baseline).", "account"),
		cycles:      counter("cycles_total", "Cycles run, by result (ok or error).", "account", "result"),
		errors:      counter("errors_total", "Failed cycles, by kind of error.", "account", "kind"),
		lastSuccess: gauge("last_success_timestamp_seconds", "Unix time of the last successful cycle; 0 before the first."),
		backoff:     gauge("backoff_seconds", "The wait after failed cycles in a row before the next attempt; 0 while cycles succeed."),
		failures:    gauge("consecutive_failures", "Failed cycles in a row."),
		nextRun:     gauge("next_run_timestamp_seconds", "Unix time of the next cycle."),
	}
	m.reg.MustRegister(m.forwarded, m.bytes, m.deleted, m.leftBehind, m.baselined, m.cycles, m.errors,
		m.lastSuccess, m.backoff, m.failures, m.nextRun,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// add makes an account's series exist at zero, so that a dashboard sees the
// account before its first cycle ends.
func (m *metrics) add(account string) {
	for _, v := range []*prometheus.CounterVec{m.forwarded, m.bytes, m.deleted, m.leftBehind, m.baselined} {
		v.WithLabelValues(account)
	}
	m.cycles.WithLabelValues(account, "ok")
	m.cycles.WithLabelValues(account, "error")
	for _, v := range []*prometheus.GaugeVec{m.lastSuccess, m.backoff, m.failures} {
		v.WithLabelValues(account)
	}
}

// forget removes an account that a reload took out of the configuration.
func (m *metrics) forget(account string) {
	l := prometheus.Labels{"account": account}
	for _, v := range []*prometheus.CounterVec{m.forwarded, m.bytes, m.deleted, m.leftBehind, m.baselined, m.cycles, m.errors} {
		v.DeletePartialMatch(l)
	}
	for _, v := range []*prometheus.GaugeVec{m.lastSuccess, m.backoff, m.failures, m.nextRun} {
		v.DeletePartialMatch(l)
	}
}

// countCycle adds what a cycle did, whatever its outcome: messages copied
// before a failure were copied all the same.
func (m *metrics) countCycle(account string, r *Report) {
	m.forwarded.WithLabelValues(account).Add(float64(r.Appended + r.Recovered))
	m.bytes.WithLabelValues(account).Add(float64(r.Bytes))
	m.deleted.WithLabelValues(account).Add(float64(r.Deleted))
	m.leftBehind.WithLabelValues(account).Add(float64(r.LeftBehind))
	m.baselined.WithLabelValues(account).Add(float64(r.Baselined))
}

// schedule records a cycle's outcome and the next run.
func (m *metrics) schedule(account string, r *Report, next time.Time) {
	if r.Err == nil {
		m.cycles.WithLabelValues(account, "ok").Inc()
		m.lastSuccess.WithLabelValues(account).Set(float64(r.Start.Add(r.Duration).UnixMilli()) / 1000)
		m.backoff.WithLabelValues(account).Set(0)
	} else {
		m.cycles.WithLabelValues(account, "error").Inc()
		m.errors.WithLabelValues(account, string(r.Kind)).Inc()
		m.backoff.WithLabelValues(account).Set(r.Backoff.Seconds())
	}
	m.failures.WithLabelValues(account).Set(float64(r.Failures))
	m.nextRun.WithLabelValues(account).Set(float64(next.Unix()))
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// MetricsServer returns the HTTP server for Handler. Its timeouts and
// header bound keep a slow or hostile client from holding connections or
// memory: the endpoint answers scrapes, nothing else.
func MetricsServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    MetricsMaxHeaderBytes,
	}
}

// MetricsMaxHeaderBytes bounds a request's header on the metrics server.
const MetricsMaxHeaderBytes = 8 << 10

// IsLoopback reports whether a listen address (HOST:PORT) is reachable only
// from this host. An empty host, as in ":9465", listens everywhere.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
