// Metrics: the gateway's Prometheus metrics and who may read /metrics.

package wsgateway

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"switchyard/auth"
	"switchyard/internal/httpapi"
)

// metrics are the gateway's Prometheus metrics, in a registry of its own so
// that several gateways (tests) do not collide.
type metrics struct {
	reg           *prometheus.Registry
	browsers      prometheus.Gauge
	known         prometheus.Gauge
	online        prometheus.Gauge
	broadcast     prometheus.Counter
	commands      prometheus.Counter
	refused       prometheus.Counter
	dropped       prometheus.Counter
	ignored       prometheus.Counter
	ingestDropped prometheus.Counter
	waited        prometheus.Counter
	throttled     prometheus.Counter // logins refused over HTTP because their address failed too often
}

func newMetrics(g *Gateway) *metrics {
	reg := prometheus.NewRegistry()
	f := promauto.With(reg)
	gauge := func(name, help string) prometheus.Gauge {
		return f.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	counter := func(name, help string) prometheus.Counter {
		return f.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &metrics{
		reg:       reg,
		browsers:  gauge("switchyard_browsers_connected", "WebSocket browsers connected (/ws and /ws/<id>)."),
		known:     gauge("switchyard_devices_known", "Devices the control plane knows."),
		online:    gauge("switchyard_devices_online", "Known devices whose status is online."),
		broadcast: counter("switchyard_events_broadcast_total", "Events broadcast to browsers (each counted once, however many browsers)."),
		commands:  counter("switchyard_commands_published_total", "led/set commands published for browsers and the API."),
		refused:   counter("switchyard_browser_messages_refused_total", "Browser messages answered with an error event."),
		dropped:   counter("switchyard_browsers_dropped_slow_total", "Browsers disconnected because they fell behind."),
		ignored: counter("switchyard_board_messages_ignored_total",
			"Board messages ignored for a bad payload, an invalid device id in the topic, or the device limit."),
		ingestDropped: counter("switchyard_count_messages_shed_total", "count messages shed because the gateway fell behind."),
		waited: counter("switchyard_browser_writes_waited_total",
			"Rounds of frames a browser's socket could not take at once (that browser is written by a goroutine of its own, waiting, until it has caught up)."),
	}
	m.throttled = f.NewCounter(prometheus.CounterOpts{Name: throttledMetric, Help: throttledHelp,
		ConstLabels: prometheus.Labels{"via": "http"}})
	if mt := g.cfg.MQTTThrottled; mt != nil {
		f.NewCounterFunc(prometheus.CounterOpts{Name: throttledMetric, Help: throttledHelp,
			ConstLabels: prometheus.Labels{"via": "mqtt"}}, func() float64 { return float64(mt()) })
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if mc := g.cfg.MQTTClients; mc != nil {
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchyard_mqtt_clients_connected", Help: "MQTT clients connected to the embedded broker.",
		}, func() float64 { return float64(mc()) })
	}
	return m
}

const (
	throttledMetric = "switchyard_auth_throttled_total"
	throttledHelp   = "Logins refused without a password check because their address failed too often (HTTP Basic and /login: via http; MQTT CONNECT: via mqtt)."
)

func (m *metrics) setFleet(known, online int) {
	m.known.Set(float64(known))
	m.online.Set(float64(online))
}

func (m *metrics) handler(extra prometheus.Gatherer) http.Handler {
	if extra == nil {
		return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	}
	return promhttp.HandlerFor(prometheus.Gatherers{m.reg, extra}, promhttp.HandlerOpts{})
}

func (g *Gateway) serveMetrics(w http.ResponseWriter, r *http.Request) {
	switch g.cfg.Metrics {
	case MetricsOff:
		http.NotFound(w, r)
		return
	case MetricsAuth:
		id, err := g.identify(r, false)
		if errors.Is(err, auth.ErrThrottled) {
			refuseIdentity(w, r, err)
			return
		}
		if err != nil || !id.CanWatch() {
			w.Header().Set("WWW-Authenticate", `Basic realm="switchyard", charset="UTF-8"`)
			httpapi.Error(w, http.StatusUnauthorized, "metrics need credentials")
			return
		}
	}
	g.m.handler(g.cfg.Gatherer).ServeHTTP(w, r)
}

// MetricsAccess says who may read /metrics.
type MetricsAccess uint8

// The http.metrics settings.
const (
	MetricsPublic MetricsAccess = iota // anybody (the default)
	MetricsAuth                        // like the API: a viewer or more
	MetricsOff                         // not served
)

// ParseMetricsAccess parses http.metrics: public, auth or off.
func ParseMetricsAccess(s string) (MetricsAccess, error) {
	switch s {
	case "", "public":
		return MetricsPublic, nil
	case "auth":
		return MetricsAuth, nil
	case "off":
		return MetricsOff, nil
	}
	return MetricsPublic, fmt.Errorf("%q: want public, auth or off", s)
}
