// Package extbroker connects the control plane to an external MQTT broker
// (Mosquitto, EMQX, HiveMQ, VerneMQ...) instead of embedding one, so that
// several control planes can share a clustered broker.
//
// It offers the same operations as the embedded broker (Publish,
// Subscribe, ClearRetained, Healthy) over a paho client that reconnects on
// its own and subscribes again after every connect, so the broker resends
// its retained messages and the gateway rebuilds its state.
package extbroker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"switchyard/devices"
	"switchyard/internal/pahostore"
)

// Config configures a Client.
type Config struct {
	// URL is the broker: tcp://, ssl://, ws:// or wss://host:port.
	URL      string
	Username string
	Password string
	// ClientID identifies this control plane at the broker; empty means
	// "switchyard-" and a random suffix (so several instances never clash).
	ClientID string
	// Timeout bounds a publish or subscribe; 0 means 10 s.
	Timeout time.Duration
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
}

// Message is an MQTT message as a subscriber sees it.
type Message struct {
	Topic   string
	Payload []byte
	Retain  bool
}

// ErrNotConnected is returned while the broker connection is down.
var ErrNotConnected = errors.New("not connected to the external broker")

// Client is a connection to an external broker.
type Client struct {
	c       paho.Client
	url     string
	timeout time.Duration
	log     *slog.Logger

	stop chan struct{}  // closed by Close: ends connectLoop
	wg   sync.WaitGroup // connectLoop

	mu   sync.Mutex               // guards subs, seen
	subs map[string]func(Message) // filter → handler, subscribed again on every connect
	seen map[string]struct{}      // topics seen, for ClearRetained

	closeOnce sync.Once
}

// ValidateURL checks a broker URL.
func ValidateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("broker url %q: %w", raw, err)
	}
	switch u.Scheme {
	case "tcp", "ssl", "tls", "ws", "wss", "mqtt", "mqtts":
	default:
		return fmt.Errorf("broker url %q: scheme must be tcp://, ssl://, ws:// or wss://", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("broker url %q: no host", raw)
	}
	return nil
}

// New returns a client; Start connects it.
func New(cfg Config) (*Client, error) {
	if err := ValidateURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClientID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		cfg.ClientID = "switchyard-" + hex.EncodeToString(b)
	}
	x := &Client{
		url:     cfg.URL,
		timeout: cfg.Timeout,
		log:     cfg.Logger,
		subs:    map[string]func(Message){},
		seen:    map[string]struct{}{},
		stop:    make(chan struct{}),
	}
	o := paho.NewClientOptions().
		AddBroker(cfg.URL).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(true).
		SetAutoReconnect(true).    // after the first connect; connectLoop does the first
		SetStore(pahostore.Nop{}). // no resend after a reconnect: see pahostore (a command in flight times out)
		SetConnectTimeout(cfg.Timeout).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(10 * time.Second).
		SetOrderMatters(false). // handlers only queue; they never block
		SetOnConnectHandler(x.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			x.log.Warn("external broker connection lost; reconnecting", "url", x.url, "err", err)
		})
	x.c = paho.NewClient(o)
	return x, nil
}

// Start connects in the background; the client keeps retrying until it
// reaches the broker (Healthy reports the state), logging why it cannot
// (a refused password, a broker that is down) each time the reason changes.
func (x *Client) Start() {
	x.log.Info("connecting to the external broker", "url", x.url)
	x.wg.Add(1)
	go x.connectLoop() // ends once connected (paho reconnects from then on) or at Close
}

// connectLoop tries to connect, 1 s apart at first and at most 10 s apart.
// (paho's own ConnectRetry retries without saying why it failed.)
func (x *Client) connectLoop() {
	defer x.wg.Done()
	delay := time.Second
	last := ""
	for {
		tok := x.c.Connect()
		select {
		case <-tok.Done():
		case <-x.stop:
			return
		}
		err := tok.Error()
		if err == nil {
			return
		}
		if msg := err.Error(); msg != last {
			x.log.Error("cannot connect to the external broker; retrying", "url", x.url, "err", err)
			last = msg
		} else {
			x.log.Debug("cannot connect to the external broker; retrying", "url", x.url, "err", err)
		}
		select {
		case <-time.After(delay):
		case <-x.stop:
			return
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// onConnect subscribes every filter again: the broker resends retained
// messages, from which the gateway rebuilds its state.
func (x *Client) onConnect(c paho.Client) {
	x.log.Info("connected to the external broker", "url", x.url)
	x.mu.Lock()
	subs := make(map[string]func(Message), len(x.subs))
	for f, fn := range x.subs {
		subs[f] = fn
	}
	x.mu.Unlock()
	for f, fn := range subs {
		x.subscribe(c, f, fn) // paho calls onConnect on its own goroutine; waiting here is fine
	}
}

func (x *Client) subscribe(c paho.Client, filter string, fn func(Message)) {
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		x.mu.Lock()
		x.seen[m.Topic()] = struct{}{}
		x.mu.Unlock()
		fn(Message{Topic: m.Topic(), Payload: m.Payload(), Retain: m.Retained()})
	})
	if !tok.WaitTimeout(x.timeout) {
		x.log.Error("subscribe timed out", "filter", filter)
		return
	}
	if err := tok.Error(); err != nil {
		x.log.Error("subscribe failed", "filter", filter, "err", err)
	}
}

// Subscribe delivers every message matching filter to fn, now and after
// every reconnect (retained messages included). fn runs on paho's
// goroutines: it must copy what it keeps and must not block.
func (x *Client) Subscribe(filter string, fn func(Message)) error {
	x.mu.Lock()
	x.subs[filter] = fn
	x.mu.Unlock()
	if x.c.IsConnectionOpen() {
		x.subscribe(x.c, filter, fn)
	}
	return nil
}

// Publish publishes a message and waits for the broker's acknowledgement
// (QoS 1) or the timeout.
func (x *Client) Publish(topic string, payload []byte, retain bool, qos byte) error {
	if !x.c.IsConnectionOpen() {
		return fmt.Errorf("publish %s: %w", topic, ErrNotConnected)
	}
	tok := x.c.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(x.timeout) {
		return fmt.Errorf("publish %s: timed out after %v", topic, x.timeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// ClearRetained publishes an empty retained message to every topic seen
// that matches filter. It returns how many it cleared.
func (x *Client) ClearRetained(filter string) (int, error) {
	x.mu.Lock()
	var topics []string
	for t := range x.seen {
		if devices.MatchFilter(filter, t) {
			topics = append(topics, t)
			delete(x.seen, t)
		}
	}
	x.mu.Unlock()
	for i, t := range topics {
		if err := x.Publish(t, nil, true, 1); err != nil {
			return i, err
		}
	}
	return len(topics), nil
}

// Healthy returns nil while connected to the broker.
func (x *Client) Healthy() error {
	if !x.c.IsConnectionOpen() {
		return ErrNotConnected
	}
	return nil
}

// Close disconnects. It is safe to call more than once.
func (x *Client) Close() error {
	x.closeOnce.Do(func() {
		close(x.stop)
		x.wg.Wait()
		x.c.Disconnect(250)
	})
	return nil
}
