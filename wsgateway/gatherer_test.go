package wsgateway_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/wsgateway"
)

// TestMetricsGatherer: another package's metrics (Config.Gatherer) are
// served on /metrics beside the gateway's own.
func TestMetricsGatherer(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_test_extra_total", Help: "A metric of another package."})
	reg.MustRegister(c)
	c.Add(3)
	h := newHarness(t, wsgateway.Config{Gatherer: reg})
	m := h.metrics()
	for _, want := range []string{"\nswitchyard_test_extra_total 3\n", "\nswitchyard_devices_known 0\n"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grep(m, "switchyard_"))
		}
	}
}
