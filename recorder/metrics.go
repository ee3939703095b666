package recorder

import "github.com/prometheus/client_golang/prometheus"

// metrics are the recorder's Prometheus metrics; the counters of each
// record kind are taken once, so that counting costs no label lookup.
type metrics struct {
	writtenEvents, writtenPoints, writtenAudit prometheus.Counter
	droppedEvents, droppedPoints, droppedAudit prometheus.Counter
	writeErrors                                prometheus.Counter
	pruned                                     prometheus.Counter
	flushSeconds                               prometheus.Histogram
}

// register makes the metrics and registers them with reg, with a gauge
// of the queue read from queued when scraped.
func (m *metrics) register(reg prometheus.Registerer, queued func() int) error {
	written := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_history_written_total",
		Help: "History records written to the database, by kind (events, points: counts a board a minute, audit).",
	}, []string{"kind"})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_history_dropped_total",
		Help: "History records dropped, by kind, because the queue was full (the database too slow or down) or the recorder closed.",
	}, []string{"kind"})
	m.writtenEvents, m.writtenPoints, m.writtenAudit = written.WithLabelValues("events"), written.WithLabelValues("points"), written.WithLabelValues("audit")
	m.droppedEvents, m.droppedPoints, m.droppedAudit = dropped.WithLabelValues("events"), dropped.WithLabelValues("points"), dropped.WithLabelValues("audit")
	m.writeErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchyard_history_write_errors_total",
		Help: "History batches whose write failed (each is retried at the next flush).",
	})
	m.pruned = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchyard_history_pruned_total",
		Help: "History and audit rows deleted by retention (history.retention).",
	})
	m.flushSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "switchyard_history_flush_seconds",
		Help:    "Time to write one batch of history records (one transaction).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8), // 0.5 ms to 8 s
	})
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchyard_history_queued",
		Help: "History records waiting to be written.",
	}, func() float64 { return float64(queued()) })
	for _, c := range []prometheus.Collector{written, dropped, m.writeErrors, m.pruned, m.flushSeconds, queue} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
