package updates

import (
	"github.com/prometheus/client_golang/prometheus"

	"switchyard/rollout"
)

// The service's Prometheus metrics. The rollout gauges are read from the
// rollouts when /metrics is scraped (a collector), so they are never out
// of step with them and cost nothing between scrapes.

var (
	boardStates = []rollout.BoardState{
		rollout.BoardPending, rollout.BoardWaiting, rollout.BoardUpdating, rollout.BoardChecking,
		rollout.BoardUpdated, rollout.BoardFailed, rollout.BoardSkipped,
	}
	rolloutStates = []rollout.State{rollout.Running, rollout.Paused, rollout.Halted, rollout.Aborted, rollout.Done}

	boardsDesc = prometheus.NewDesc("switchyard_rollout_boards",
		"Boards of the rollouts that are not finished, by their state in the rollout.", []string{"state"}, nil)
	rolloutsDesc = prometheus.NewDesc("switchyard_rollouts",
		"Rollouts by state (every rollout the database holds).", []string{"state"}, nil)
)

func (s *Service) registerMetrics(reg prometheus.Registerer) error {
	s.served = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchyard_firmware_served_bytes_total",
		Help: "Firmware bytes sent to boards by GET /firmware/<sha256>.",
	})
	s.downloads = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchyard_firmware_downloads",
		Help: "Firmware downloads now: streaming, or waiting for a turn (updates.Config.MaxDownloads).",
	}, []string{"state"})
	for _, c := range []prometheus.Collector{s.served, s.downloads, collector{s}} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// collector reads the rollout gauges.
type collector struct{ s *Service }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- boardsDesc
	ch <- rolloutsDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	boards := map[rollout.BoardState]int{}
	rollouts := map[rollout.State]int{}
	c.s.mu.Lock()
	for _, e := range c.s.rollouts {
		rollouts[e.r.State]++
		if !e.r.State.Finished() {
			for st, n := range e.r.Counts {
				boards[st] += n
			}
		}
	}
	c.s.mu.Unlock()
	for _, st := range boardStates {
		ch <- prometheus.MustNewConstMetric(boardsDesc, prometheus.GaugeValue, float64(boards[st]), string(st))
	}
	for _, st := range rolloutStates {
		ch <- prometheus.MustNewConstMetric(rolloutsDesc, prometheus.GaugeValue, float64(rollouts[st]), string(st))
	}
}
