//go:build !tinygo

// Package pahosession implements board.Session with the Eclipse Paho MQTT
// client (MQTT 3.1.1), for boards that run the full Go runtime: Linux
// boards and simulated boards. Paho does not build under TinyGo.
package pahosession

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"switchyard/board"
	"switchyard/board/internal/connslot"
)

// DefaultConnectTimeout bounds dialling and the MQTT handshake.
const DefaultConnectTimeout = 10 * time.Second

// quiesce is how long Disconnect waits for the DISCONNECT to be written.
const quiesce = 250 * time.Millisecond

// schemes are the broker URL schemes devicefw accepts.
var schemes = []string{"tcp", "ssl", "ws", "wss"}

// redacted is the broker URL for messages: a password in it shows as xxxxx.
func redacted(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
}

// ValidateBroker checks a broker URL: scheme tcp://, ssl://, ws:// or
// wss:// and a host.
func ValidateBroker(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid broker URL %q: %w", redacted(raw), err)
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return fmt.Errorf("invalid broker URL %q: scheme must be tcp://, ssl://, ws:// or wss://", redacted(raw))
	}
	if u.Host == "" {
		return fmt.Errorf("invalid broker URL %q: no host", redacted(raw))
	}
	return nil
}

// Options configure a Session.
type Options struct {
	Broker         string        // broker URL, see ValidateBroker
	TLS            *tls.Config   // for ssl:// and wss://; nil means the system defaults
	ConnectTimeout time.Duration // default DefaultConnectTimeout
}

// Session is a board.Session over Paho. Each Connect makes a fresh Paho
// client, so that nothing of a lost connection lingers. It is safe for
// concurrent use.
type Session struct {
	opts   Options
	client connslot.Slot[mqtt.Client] // the open connection, if any
}

var _ board.Session = (*Session)(nil)

// New returns a Session for the broker in o; it does not connect.
func New(o Options) (*Session, error) {
	if err := ValidateBroker(o.Broker); err != nil {
		return nil, err
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	return &Session{opts: o}, nil
}

// ErrNotConnected (board.ErrNotConnected) is returned by Subscribe and
// Publish without a connection.
var ErrNotConnected = board.ErrNotConnected

// Connect opens a connection; see board.Session.
func (s *Session) Connect(ctx context.Context, o board.ConnectOptions) error {
	co := mqtt.NewClientOptions().
		AddBroker(s.opts.Broker).
		SetClientID(o.ClientID).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false). // the board reconnects, with its own backoff
		SetConnectRetry(false).
		SetKeepAlive(o.KeepAlive).
		SetPingTimeout(min(max(o.KeepAlive, time.Second), 10*time.Second)).
		SetConnectTimeout(s.opts.ConnectTimeout).
		SetWriteTimeout(s.opts.ConnectTimeout).
		SetOrderMatters(true)
	if s.opts.TLS != nil {
		co.SetTLSConfig(s.opts.TLS)
	}
	if w := o.Will; w != nil {
		co.SetBinaryWill(w.Topic, w.Payload, w.QoS, w.Retained)
	}
	if on := o.OnMessage; on != nil {
		co.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			on(board.Message{Topic: m.Topic(), Payload: m.Payload(), QoS: m.Qos(), Retained: m.Retained()})
		})
	}
	if lost := o.OnLost; lost != nil {
		co.SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost(err) })
	}
	c := mqtt.NewClient(co)
	tok := c.Connect()
	if err := wait(ctx, tok); err != nil {
		// Paho cannot abandon a connect in flight: let it finish (it is
		// bounded by ConnectTimeout) and close whatever it opened.
		<-tok.Done()
		if tok.Error() == nil {
			c.Disconnect(0)
		}
		return fmt.Errorf("connect %s: %w", redacted(s.opts.Broker), err)
	}
	if old := s.client.Swap(c); old != nil {
		old.Disconnect(0)
	}
	return nil
}

// Subscribe subscribes and waits for the SUBACK; a refused subscription
// (return code 0x80) is an error.
func (s *Session) Subscribe(ctx context.Context, filter string, qos byte) error {
	c, err := s.client.Get()
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	tok := c.Subscribe(filter, qos, nil) // nil: messages go to OnMessage
	if err := wait(ctx, tok); err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		if code, ok := st.Result()[filter]; ok && code >= 0x80 {
			return fmt.Errorf("subscribe %s: refused by the broker (code %#x)", filter, code)
		}
	}
	return nil
}

// Publish publishes and waits until the message is written (QoS 0) or
// acknowledged (QoS 1).
func (s *Session) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	c, err := s.client.Get()
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	// Paho keeps the slice until the packet is written, which may be after
	// a timeout here; the copy keeps the caller's buffer its own.
	tok := c.Publish(topic, qos, retain, append([]byte(nil), payload...))
	if err := wait(ctx, tok); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// Disconnect sends DISCONNECT if the connection is open and releases it.
// It is idempotent.
func (s *Session) Disconnect(context.Context) error {
	if c := s.client.Take(); c != nil {
		c.Disconnect(uint(quiesce / time.Millisecond))
	}
	return nil
}

// wait waits for tok or ctx, whichever comes first.
func wait(ctx context.Context, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
