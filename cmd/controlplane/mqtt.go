package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"
	"unicode"

	"switchyard/auth"
	"switchyard/broker"
	"switchyard/devices"
	"switchyard/extbroker"
	"switchyard/history"
	"switchyard/wsgateway"
)

// mqttSide is the MQTT half of the control plane: the embedded broker or a
// connection to an external one.
type mqttSide interface {
	wsgateway.Bus
	Healthy() error
	Close() error
	// start begins serving and feeds every board message, and the led/set
	// commands where their sender is known, to ingest.
	start(ingest ingestFunc) error
	// subscribe delivers messages on filter to fn (which must not block).
	subscribe(filter string, fn func(topic string, payload []byte)) error
	// clientCount is the MQTT clients metric, nil when not known.
	clientCount() func() int64
	// throttled counts the CONNECTs refused for too many failed logins
	// from their address, nil when not known (external mode).
	throttled() func() uint64
	// boardAddr returns the local address of a board's MQTT connection
	// (for its download URLs), nil when not known (external mode).
	boardAddr() func(id string) (string, bool)
	// attrs describe it in the "serving" log line.
	attrs() []any
}

// ingestFunc takes a message on a board's topic: when it arrived (or, for
// a stored one, when it first did) and who published it, where known.
type ingestFunc func(topic string, payload []byte, at time.Time, from wsgateway.Origin)

// silenceGrace is wsgateway.Config.SilenceGrace: in external mode a board
// that says nothing for 3 × its interval plus this is offline, since some
// brokers (NATS) drop a dead node's clients without their Wills. The
// embedded broker publishes every Will: off.
func silenceGrace(cfg *Config) time.Duration {
	if cfg.MQTT.Mode == "external" {
		return 15 * time.Second
	}
	return 0
}

// clientID is the control plane's client id at the external broker:
// mqtt.client_id, by default switchyard-<host name>-<HTTP port>, stable
// across restarts and different for each control plane of a host, so that
// brokers enforcing unique ids cluster-wide (NATS) accept them all.
func clientID(cfg *Config, httpPort int) string {
	if cfg.MQTT.ClientID != "" {
		return cfg.MQTT.ClientID
	}
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return "switchyard-" + devices.SanitizeID(host) + "-" + strconv.Itoa(httpPort)
}

// checkClientID checks mqtt.client_id: empty (the default) or 1 to 128
// printable characters without spaces.
func checkClientID(id string) error {
	if len(id) > 128 {
		return fmt.Errorf("%q: at most 128 characters", id)
	}
	for _, r := range id {
		if r <= ' ' || r == 0x7f || !unicode.IsPrint(r) {
			return fmt.Errorf("%q: no spaces or control characters", id)
		}
	}
	return nil
}

// openMQTT opens the MQTT side; audit takes the audit entry of the first
// CONNECT refused in each interval an address is throttled for; httpPort
// is the port http.listen got (the default client id at an external
// broker has it).
func openMQTT(cfg *Config, topics devices.Topics, az *auth.Authority, tlsCfg *tls.Config, audit func(history.Entry), httpPort int, log *slog.Logger) (mqttSide, error) {
	if cfg.MQTT.Mode == "external" {
		id := clientID(cfg, httpPort)
		x, err := extbroker.New(extbroker.Config{
			URL:        cfg.MQTT.URL,
			ClientID:   id,
			Username:   cfg.MQTT.Username,
			Password:   cfg.MQTT.Password,
			ProbeTopic: topics.Probe(id),
			Logger:     log.With("component", "extbroker"),
		})
		if err != nil {
			return nil, err
		}
		return external{x, topics, cfg.MQTT.URL}, nil
	}
	b, err := broker.New(broker.Config{
		Listen:         cfg.MQTT.Listen,
		WSListen:       cfg.MQTT.WSListen,
		TLSListen:      cfg.MQTT.TLSListen,
		TLS:            tlsCfg,
		AllowedOrigins: cfg.HTTP.AllowedOrigins,
		StoragePath:    cfg.Storage.Path,
		Topics:         topics,
		Auth:           az,
		MaxPacketSize:  uint32(cfg.MQTT.MaxPacketSize),
		MaxClients:     int64(cfg.Limits.MaxMQTTClients),
		MaxDevices:     cfg.Limits.MaxDevices,
		OnThrottled: func(remote, name string) { // inside a Mochi hook: audit does not block
			audit(history.Entry{At: time.Now(), Actor: name, Action: history.ActionLogin,
				Target: wsgateway.AuditThrottled, Result: history.ResultDenied, Remote: remote})
		},
		Logger: log.With("component", "broker"),
	})
	if err != nil {
		return nil, err
	}
	return embedded{b, topics}, nil
}

// embedded is the Mochi broker inside the process.
type embedded struct {
	*broker.Broker
	topics devices.Topics
}

func (e embedded) start(ingest ingestFunc) error {
	fn := func(m broker.Message) {
		at := time.Now() // Created has second precision: history orders by at
		if m.Restored {
			at = m.Created
		}
		ingest(m.Topic, m.Payload, at, wsgateway.Origin{Client: m.Client, User: m.User, Will: m.Will, Restored: m.Restored})
	}
	// Subscribed before Start: the stored retained messages reach the
	// gateway before any board can connect and publish fresher ones.
	if err := e.Subscribe(e.topics.BoardFilter(), fn); err != nil {
		return err
	}
	// Commands, for the history to say who switched a board.
	if err := e.Subscribe(e.topics.CommandFilter(), fn); err != nil {
		return err
	}
	return e.Start()
}

func (e embedded) clientCount() func() int64 { return e.Clients }

func (e embedded) throttled() func() uint64 { return e.Throttled }

func (e embedded) boardAddr() func(string) (string, bool) {
	return func(id string) (string, bool) {
		a, ok := e.ClientLocalAddr(id) // boards connect with their id as client id
		if !ok {
			return "", false
		}
		return a.String(), true
	}
}

func (e embedded) subscribe(filter string, fn func(string, []byte)) error {
	return e.Subscribe(filter, func(m broker.Message) { fn(m.Topic, m.Payload) })
}

func (e embedded) attrs() []any {
	a := []any{"mqtt", e.Addr().String()}
	if w := e.WSAddr(); w != nil {
		a = append(a, "mqtt_ws", w.String()+"/mqtt")
	}
	if t := e.TLSAddr(); t != nil {
		a = append(a, "mqtt_tls", t.String())
	}
	return a
}

// external is a connection to a broker elsewhere; no MQTT listener is
// opened.
type external struct {
	*extbroker.Client
	topics devices.Topics
	url    string
}

func (x external) start(ingest ingestFunc) error {
	// An external broker does not say who published: no commands (the
	// control plane's own would look like anybody's), no Will marks. It
	// resends retained messages on every subscription: marked, so the
	// gateway drops what it already holds.
	err := x.Subscribe(x.topics.BoardFilter(), func(m extbroker.Message) {
		ingest(m.Topic, m.Payload, time.Now(), wsgateway.Origin{Retained: m.Retain})
	})
	x.Start()
	return err
}

func (x external) clientCount() func() int64 { return nil }

func (x external) throttled() func() uint64 { return nil }

func (x external) boardAddr() func(string) (string, bool) { return nil }

func (x external) subscribe(filter string, fn func(string, []byte)) error {
	return x.Subscribe(filter, func(m extbroker.Message) { fn(m.Topic, m.Payload) })
}

func (x external) attrs() []any {
	return []any{"mqtt", "external", "url", x.url, "client_id", x.ClientID()}
}
